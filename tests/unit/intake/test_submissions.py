"""Filing and tracking logic over a real store (no broker)."""
import re
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pytest

from services.intake import submissions
from services.intake.storage import ANNOUNCED, PENDING, TrackingNumberTaken
from wangge import events

TRACKING = {"PREFIX": "YT", "TIMEZONE": "Asia/Shanghai"}
CLAIM = timedelta(seconds=10)
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)


def file(store, text="路灯坏了", key=None, now=NOW, **fields):
    return submissions.file_request(
        store, {"text": text, **fields}, channel="web", source="web",
        idempotency_key=key, now=now, tracking=TRACKING, claim_for=CLAIM,
    )


def test_tracking_numbers_carry_the_local_day_and_a_random_part(store):
    first, second = file(store), file(store)
    assert re.fullmatch(r"YT-20261128-\w{4}-\w{4}", first.request["tracking_no"])
    assert first.request["tracking_no"] != second.request["tracking_no"]
    assert file(store, now=NOW + timedelta(days=1)).request["tracking_no"].startswith("YT-20261129-")


def test_a_tracking_number_drawn_twice_is_drawn_again(store, monkeypatch):
    taken = file(store).request
    draws = iter([taken["tracking_no"], taken["tracking_no"], "YT-20261128-NEW0-0001"])
    monkeypatch.setattr(submissions, "new_tracking_no", lambda prefix, now, timezone_name: next(draws))
    again = file(store, text="另一件事")
    assert again.created and again.request["tracking_no"] == "YT-20261128-NEW0-0001"
    assert store.find_by_tracking_no(taken["tracking_no"])["_id"] == taken["_id"]


def test_filing_gives_up_when_every_draw_is_taken(store, monkeypatch):
    taken = file(store).request["tracking_no"]
    monkeypatch.setattr(submissions, "new_tracking_no", lambda prefix, now, timezone_name: taken)
    with pytest.raises(TrackingNumberTaken):
        file(store, text="另一件事")


def test_concurrent_filings_never_share_a_tracking_number(store):
    pool = eventlet.GreenPool(20)
    numbers = list(pool.imap(lambda i: file(store, text=f"第{i}件").request["tracking_no"], range(40)))
    assert len(set(numbers)) == 40


def test_same_idempotency_key_returns_the_first_request(store):
    first = file(store, key="inbound:m-1")
    again = file(store, key="inbound:m-1", text="不同的文字")
    assert first.created and not again.created
    assert again.request["_id"] == first.request["_id"]
    assert again.request["text"] == "路灯坏了"


def test_new_request_is_pending_until_announced(store):
    filing = file(store)
    assert filing.request["announce"]["state"] == PENDING
    published = []
    submissions.announce(store, lambda kind, event: published.append((kind, event)), filing.request, NOW)
    [(kind, event)] = published
    assert kind == events.REQUEST_RECEIVED
    assert events.read_event(events.REQUEST_RECEIVED, event)["data"]["tracking_no"] == filing.request["tracking_no"]
    assert store.find_by_tracking_no(filing.request["tracking_no"])["announce"]["state"] == ANNOUNCED
    assert store.sentiment_entries()[0]["request_id"] == filing.request["_id"]


def test_failed_publish_leaves_the_request_pending_and_logged_once(store):
    filing = file(store)

    def broken(kind, event):
        raise ConnectionError("broker gone")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            submissions.announce(store, broken, filing.request, NOW)
    assert store.count_pending_announcements() == 1
    assert len(store.sentiment_entries()) == 1


def test_pending_announcement_is_claimed_by_one_replica_only_once_due(store):
    filing = file(store)
    assert store.claim_due_announcements(NOW, CLAIM) == []  # the filing worker still owns it
    later = NOW + CLAIM + timedelta(seconds=1)
    pool = eventlet.GreenPool(2)
    claims = list(pool.imap(lambda _: store.claim_due_announcements(later, CLAIM), range(2)))
    assert sorted(len(c) for c in claims) == [0, 1]
    assert [c for c in claims if c][0][0]["_id"] == filing.request["_id"]


def change_event(request, status, at, version=None, event_id=None):
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "data": {"case_id": "C-9", "request_id": request["_id"], "tracking_no": request["tracking_no"],
                 "status": status, "at": at, "version": version, "grid_id": "G-1", "grid_name": "南门社区02网格",
                 "category": "water", "category_name": "供水"},
    }


def test_case_changes_apply_once_and_the_latest_wins(store):
    request = file(store).request
    acknowledged = change_event(request, "acknowledged", NOW + timedelta(minutes=2), version=1)
    assert submissions.apply_case_status(store, acknowledged)
    assert submissions.apply_case_status(store, change_event(request, "assigned", NOW + timedelta(minutes=1), version=0))
    assert submissions.apply_case_status(store, acknowledged)  # redelivered
    stored = store.find_by_tracking_no(request["tracking_no"])
    assert stored["status"] == "acknowledged"
    assert [h["status"] for h in stored["history"]] == ["received", "assigned", "acknowledged"]
    assert stored["case_id"] == "C-9" and stored["grid_id"] == "G-1"
    assert (stored["grid_name"], stored["category_name"]) == ("南门社区02网格", "供水")


def test_case_changes_follow_the_case_version_whatever_routings_clock_says(store):
    request = file(store).request  # received at NOW by this host's clock
    behind = NOW - timedelta(minutes=5)  # routing's host runs five minutes late
    assert submissions.apply_case_status(store, change_event(request, "assigned", behind, version=0))
    assert submissions.apply_case_status(store, change_event(request, "resolved", behind + timedelta(minutes=2), version=3))
    # an earlier change delivered late, stamped later by a routing host running ahead
    assert submissions.apply_case_status(store, change_event(request, "acknowledged", NOW + timedelta(hours=1), version=1))
    stored = store.find_by_tracking_no(request["tracking_no"])
    assert stored["status"] == "resolved"
    assert [h["status"] for h in stored["history"]] == ["received", "assigned", "acknowledged", "resolved"]


def test_case_changes_from_routing_before_case_versions_follow_its_clock(store):
    request = file(store).request
    assert submissions.apply_case_status(store, change_event(request, "acknowledged", NOW + timedelta(minutes=2)))
    assert submissions.apply_case_status(store, change_event(request, "assigned", NOW + timedelta(minutes=1)))
    assert store.find_by_tracking_no(request["tracking_no"])["status"] == "acknowledged"


def test_case_change_for_an_unknown_request_is_reported(store):
    ghost = {"_id": "nope", "tracking_no": "YT-20261128-999999"}
    assert submissions.apply_case_status(store, change_event(ghost, "assigned", NOW)) is False


def test_the_received_entry_masks_phone_numbers_and_the_reporters_name(store):
    filing = file(store, text="我是鲍老伯，电话13912345678", reporter={"name": "鲍老伯"})
    submissions.announce(store, lambda kind, event: None, filing.request, NOW)
    [entry] = store.sentiment_entries()
    assert entry["summary"] == "我是鲍**，电话139****5678"


def test_the_resolution_deadline_follows_the_latest_change_of_the_case_and_ends_with_it(store):
    request = file(store).request
    in_grid, at_town = NOW + timedelta(days=3), NOW + timedelta(days=7)
    escalated = change_event(request, "escalated", NOW + timedelta(hours=2), version=1)
    escalated["data"]["resolution_due_at"] = at_town
    assigned = change_event(request, "assigned", NOW + timedelta(minutes=1), version=0)
    assigned["data"]["resolution_due_at"] = in_grid
    assert submissions.apply_case_status(store, escalated)
    assert submissions.apply_case_status(store, assigned)  # arrives late: the town's deadline stands
    assert store.find_by_tracking_no(request["tracking_no"])["resolution_due_at"] == at_town
    resolved = change_event(request, "resolved", NOW + timedelta(days=1), version=2)
    resolved["data"]["resolution_due_at"] = None
    assert submissions.apply_case_status(store, resolved)
    assert store.find_by_tracking_no(request["tracking_no"])["resolution_due_at"] is None


def test_earlier_entries_of_a_request_join_the_grid_routing_found_for_it(store):
    request = file(store).request
    submissions.announce(store, lambda kind, event: None, request, NOW)
    assert store.sentiment_entries("G-1") == []
    assert submissions.apply_case_status(store, change_event(request, "assigned", NOW, version=0))
    assert {entry["kind"] for entry in store.sentiment_entries("G-1")} == {"request_received", "case_status_changed"}


def test_an_unversioned_change_recorded_between_the_read_and_the_write_makes_the_write_read_again(store):
    request = file(store).request
    assigned = change_event(request, "assigned", NOW)
    read = store.request_status(request["tracking_no"])
    assert submissions.apply_case_status(store, change_event(request, "acknowledged", NOW + timedelta(minutes=1)))
    # planned from the read before "acknowledged": refused, nothing written
    assert store.record_case_status(read, {**assigned["data"], "event_id": assigned["event_id"], "case_version": None, "note": None,
                                           "actor": None}, {}) is False
    assert submissions.apply_case_status(store, assigned)
    stored = store.find_by_tracking_no(request["tracking_no"])
    assert stored["status"] == "acknowledged"
    assert [h["status"] for h in stored["history"]] == ["received", "assigned", "acknowledged"]


def test_a_versioned_change_is_recorded_without_reading_the_request(store, monkeypatch):
    request = file(store, grid_id="G-1").request
    submissions.announce(store, lambda kind, event: None, request, NOW)

    def no_reads(*args, **kwargs):
        raise AssertionError("read the request")
    monkeypatch.setattr(store.requests, "find_one", no_reads)
    monkeypatch.setattr(store.requests, "find", no_reads)
    assert submissions.apply_case_status(store, change_event(request, "assigned", NOW, version=0))
    assert submissions.apply_case_status(store, change_event(request, "acknowledged", NOW + timedelta(minutes=1), version=1))
    monkeypatch.undo()
    stored = store.find_by_tracking_no(request["tracking_no"])
    assert (stored["status"], stored["case_version"], stored["case_id"]) == ("acknowledged", 1, "C-9")


def test_changes_recorded_at_once_in_any_order_leave_the_newest_status_and_every_change_once(store):
    request = file(store).request
    statuses = ["assigned", "acknowledged", "in_progress", "escalated", "in_progress", "resolved", "closed"]
    changes = [change_event(request, status, NOW + timedelta(minutes=version), version=version) for version, status in enumerate(statuses)]
    shuffled = changes[::-1] + changes[::2]  # newest first, and some twice (redelivered)
    pool = eventlet.GreenPool(len(shuffled))
    assert all(pool.imap(lambda change: submissions.apply_case_status(store, change), shuffled))
    stored = store.find_by_tracking_no(request["tracking_no"])
    assert (stored["status"], stored["case_version"]) == ("closed", 6)
    assert [h["status"] for h in stored["history"]] == ["received", *statuses]
    assert [h["case_version"] for h in stored["history"][1:]] == list(range(7))


def test_an_older_change_arriving_late_joins_the_history_and_changes_nothing_else(store):
    request = file(store).request
    newer = change_event(request, "in_progress", NOW + timedelta(minutes=5), version=2)
    assert submissions.apply_case_status(store, newer)
    older = change_event(request, "assigned", NOW, version=0)
    older["data"].update(grid_id="G-OLD", grid_name="旧网格")
    assert submissions.apply_case_status(store, older)
    stored = store.find_by_tracking_no(request["tracking_no"])
    assert (stored["status"], stored["grid_id"], stored["grid_name"]) == ("in_progress", "G-1", "南门社区02网格")
    assert [h["status"] for h in stored["history"]] == ["received", "assigned", "in_progress"]




def test_a_redelivered_change_places_the_earlier_entries_its_first_delivery_did_not(store, monkeypatch):
    request = file(store).request
    submissions.announce(store, lambda kind, event: None, request, NOW)
    assigned = change_event(request, "assigned", NOW, version=0)
    monkeypatch.setattr(store, "place_sentiment_entries", lambda *args: (_ for _ in ()).throw(ConnectionError("store gone")))
    with pytest.raises(ConnectionError):
        submissions.apply_case_status(store, assigned)  # recorded, then the store went away
    monkeypatch.undo()
    assert submissions.apply_case_status(store, assigned)  # the redelivery
    assert {entry["kind"] for entry in store.sentiment_entries("G-1")} == {"request_received", "case_status_changed"}


def test_a_versioned_change_for_an_unknown_request_is_reported(store):
    ghost = {"_id": "nope", "tracking_no": "YT-20261128-999999"}
    assert submissions.apply_case_status(store, change_event(ghost, "assigned", NOW, version=0)) is False


def test_the_result_follows_the_latest_change_of_the_case(store):
    request = file(store).request
    resolved = change_event(request, "resolved", NOW + timedelta(hours=1), version=2)
    resolved["data"]["result"] = "已更换灯泡"
    assert submissions.apply_case_status(store, resolved)
    assert submissions.apply_case_status(store, change_event(request, "acknowledged", NOW, version=1))  # late: changes nothing
    assert store.find_by_tracking_no(request["tracking_no"])["result"] == "已更换灯泡"
    assert submissions.apply_case_status(store, change_event(request, "reopened", NOW + timedelta(days=1), version=3))
    assert store.find_by_tracking_no(request["tracking_no"])["result"] is None
