"""Announcing beside the answer: a place in the pool or the timer's turn."""
from datetime import datetime, timedelta, timezone

import eventlet
from eventlet.event import Event
from eventlet.greenpool import GreenPool
from eventlet.semaphore import Semaphore

from services.intake import submissions
from services.intake.background import Announcements
from services.intake.storage import ANNOUNCED, PENDING

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)


def stored(store, text):
    return submissions.file_request(store, {"text": text}, channel="web", source="web", idempotency_key=None, now=NOW,
                                    tracking={"PREFIX": "YT", "TIMEZONE": "Asia/Shanghai"}, claim_for=timedelta(seconds=10)).request


def test_with_every_place_taken_a_while_a_request_is_left_to_the_timer_and_the_others_are_announced(store):
    announcements = Announcements()
    announcements.store, announcements.places, announcements.pool = store, Semaphore(1), GreenPool()
    broker_confirms = Event()
    published = []

    def dispatch(event_type, event):
        broker_confirms.wait()  # a broker slow to confirm
        published.append(event["data"]["tracking_no"])

    first, second = stored(store, "路灯坏了"), stored(store, "井盖丢了")
    assert announcements.announce_soon(dispatch, first) is True  # the caller goes on at once
    eventlet.sleep(0)
    assert announcements.announce_soon(dispatch, second) is False  # after waiting a while for a place
    broker_confirms.send()
    announcements.pool.waitall()
    assert published == [first["tracking_no"]]
    assert store.find_by_tracking_no(first["tracking_no"])["announce"]["state"] == ANNOUNCED
    assert store.find_by_tracking_no(second["tracking_no"])["announce"]["state"] == PENDING  # the timer's


def test_a_burst_of_more_requests_than_places_is_announced_without_the_timer(store):
    announcements = Announcements()
    announcements.store, announcements.places, announcements.pool = store, Semaphore(2), GreenPool()
    published = []

    def dispatch(event_type, event):
        eventlet.sleep(0.01)  # a broker confirming as usual
        published.append(event["data"]["tracking_no"])

    burst = [stored(store, f"第{n}号楼的路灯坏了") for n in range(6)]
    assert [announcements.announce_soon(dispatch, request) for request in burst] == [True] * 6
    announcements.pool.waitall()
    assert sorted(published) == sorted(request["tracking_no"] for request in burst)
