"""A send's outcomes published as soon as they are recorded, over a real store; the
announce timer takes only what could not be published so."""
from datetime import timedelta

import pytest
from eventlet.event import Event

from services.notify import delivery, outgoing
from services.notify.announcing import Announcer
from services.notify.channels import Outbox
from tests.unit.notify.factories import CONFIG, reminder
from wangge import events

GRACE = timedelta(seconds=10)


class Watching(Announcer):
    """An announcer that publishes nothing itself: it notes what was stored when it
    reserved each announcement, and keeps what it is handed."""

    def __init__(self, store):
        super().__init__(store, publish=None, places=1)
        self.stored_when_reserved, self.handed = {}, []

    def reserve(self, announcement_id):
        self.stored_when_reserved[announcement_id] = [found for found, _ in outgoing.announcements_due(
            self.store, "p1", events.utcnow() + GRACE, GRACE)]
        super().reserve(announcement_id)

    def soon(self, announcement):
        self.handed.append(announcement)
        return True


def sent(store, announcer):
    """A notification sent to /dev/null, its outcome announced through ``announcer``."""
    notification = reminder("outbox")
    store.insert_new([notification])
    [outcome] = outgoing.deliver(store, Outbox({"PATH": "/dev/null"}), CONFIG["DELIVERY"], [notification["_id"]], owner="p1",
                                 announcer=announcer)
    assert outcome.status == delivery.SENT
    return notification


def due(store, now=None, **kwargs):
    return [found for found, _ in outgoing.announcements_due(store, "p1", now or events.utcnow() + GRACE, GRACE, **kwargs)]


def test_an_announcement_is_reserved_before_it_is_stored_and_handed_on_once_the_outcomes_are_recorded(store):
    announcer = Watching(store)
    notification = sent(store, announcer)
    [announcement] = announcer.handed
    assert announcer.stored_when_reserved == {announcement["_id"]: []}
    assert store.get(notification["_id"])["status"] == delivery.SENT
    [event] = announcement["events"]
    assert (event["event_type"], event["data"]["notification_id"]) == (events.NOTIFICATION_SENT, notification["_id"])
    # stored under the id handed on, for the timer should it not be published now, and left alone by the timer meanwhile
    assert due(store) == [announcement["_id"]]
    assert due(store, in_flight=announcer.in_flight) == []


def test_a_recording_that_fails_releases_its_reservation(store):
    announcer = Watching(store)

    def store_down(*args, **kwargs):
        raise ConnectionError("the store went away")
    store.record_outcomes = store_down
    with pytest.raises(ConnectionError):
        sent(store, announcer)
    assert announcer.handed == [] and announcer.in_flight == set()


def test_the_timer_takes_its_own_from_the_tick_after_they_were_stored(store):
    sent(store, None)
    now, settle = events.utcnow(), timedelta(seconds=1)
    assert due(store, now, settle=settle) == []
    assert len(due(store, now + settle, settle=settle)) == 1


def test_the_timer_leaves_alone_one_published_and_dropped_while_it_read(store):
    sent(store, None)
    [announcement_id] = due(store)
    in_flight = {announcement_id}

    class PublishedMeanwhile:
        """The store's answer comes after the announcer has published it and let go of it."""
        def pending_announcements(self, now):
            found = store.pending_announcements(now)
            in_flight.discard(announcement_id)
            return found

    assert outgoing.announcements_due(PublishedMeanwhile(), "p1", events.utcnow() + GRACE, GRACE, in_flight=in_flight) == []


def test_an_announcement_is_published_event_by_event_and_dropped(store):
    published = []
    announcer = Announcer(store, lambda event_type, event: published.append((event_type, event["event_id"])), places=2)
    sent(store, announcer)
    announcer.pool.waitall()
    [(event_type, _)] = published
    assert event_type == events.NOTIFICATION_SENT
    assert due(store) == [] and announcer.in_flight == set()


def test_what_the_broker_refuses_is_left_to_the_timer(store):
    def refuse(event_type, event):
        raise ConnectionError("access refused")
    announcer = Announcer(store, refuse, places=2)
    sent(store, announcer)
    announcer.pool.waitall()
    assert len(due(store, in_flight=announcer.in_flight)) == 1


def test_with_every_place_taken_the_send_does_not_wait_and_the_timer_publishes_it(store):
    published, under_way = [], Event()
    announcer = Announcer(store, lambda event_type, event: published.append(event_type), places=1)
    announcer.pool.spawn_n(under_way.wait)  # the one place, taken by a publish under way
    sent(store, announcer)
    under_way.send()
    announcer.pool.waitall()
    assert published == []
    assert len(due(store, in_flight=announcer.in_flight)) == 1
