"""A send's outcomes published as soon as they are recorded, over a real store; the
announce timer takes only what could not be published so."""
from datetime import timedelta

from services.notify import delivery, outgoing
from services.notify.announcing import Announcer
from services.notify.channels import Outbox
from tests.unit.notify.factories import CONFIG, reminder
from wangge import events

GRACE = timedelta(seconds=10)


def sent_with_announcement(store, announce=None):
    """A notification sent to /dev/null; the announcement of its outcome, as handed to ``announce``."""
    notification = reminder("outbox")
    store.insert_new([notification])
    handed = []
    [outcome] = outgoing.deliver(store, Outbox({"PATH": "/dev/null"}), CONFIG["DELIVERY"], [notification["_id"]], owner="p1",
                                 announce=announce or handed.append)
    assert outcome.status == delivery.SENT
    return notification, handed


def test_the_stored_announcement_is_handed_on_once_the_outcomes_are_recorded(store):
    notification, [announcement] = sent_with_announcement(store)
    assert store.get(notification["_id"])["status"] == delivery.SENT
    [event] = announcement["events"]
    assert (event["event_type"], event["data"]["notification_id"]) == (events.NOTIFICATION_SENT, notification["_id"])
    # stored under the id handed on, for the timer should it not be published now
    assert outgoing.announcements_due(store, "p1", events.utcnow(), GRACE) == [(announcement["_id"], [event])]


def test_the_timer_leaves_alone_what_is_published_beside_the_sends_and_what_was_just_recorded(store):
    _, [announcement] = sent_with_announcement(store)
    now, settle = events.utcnow(), timedelta(seconds=1)
    assert outgoing.announcements_due(store, "p1", now, GRACE, settle, in_flight={announcement["_id"]}) == []
    assert outgoing.announcements_due(store, "p1", now, GRACE, settle) == []
    assert [found for found, _ in outgoing.announcements_due(store, "p1", now + settle, GRACE, settle)] == [announcement["_id"]]


def test_an_announcement_is_published_event_by_event_and_dropped(store):
    published = []
    announcer = Announcer(store, lambda event_type, event: published.append((event_type, event["event_id"])), places=2)
    _, [announcement] = sent_with_announcement(store)
    assert announcer.soon(announcement)
    announcer.pool.waitall()
    assert published == [(event["event_type"], event["event_id"]) for event in announcement["events"]]
    assert outgoing.announcements_due(store, "p1", events.utcnow() + GRACE, GRACE) == []
    assert announcer.in_flight == set()


def test_what_the_broker_refuses_is_left_to_the_timer(store):
    def refuse(event_type, event):
        raise ConnectionError("access refused")
    announcer = Announcer(store, refuse, places=2)
    _, [announcement] = sent_with_announcement(store)
    assert announcer.soon(announcement)
    announcer.pool.waitall()
    assert [found for found, _ in outgoing.announcements_due(store, "p1", events.utcnow() + GRACE, GRACE)] == [announcement["_id"]]
    assert announcer.in_flight == set()


def test_with_every_place_taken_the_send_does_not_wait_and_the_timer_publishes_it(store):
    published = []
    announcer = Announcer(store, lambda event_type, event: published.append(event_type), places=1)
    assert announcer.places.acquire(blocking=False)  # a place taken by a publish under way
    _, [announcement] = sent_with_announcement(store)
    assert not announcer.soon(announcement)
    assert published == [] and announcer.in_flight == set()
    assert [found for found, _ in outgoing.announcements_due(store, "p1", events.utcnow() + GRACE, GRACE)] == [announcement["_id"]]
