"""Claims, outcomes and announcements over a real store, sends to real peers."""
import json
import logging
from datetime import timedelta

import eventlet
import pytest
import requests

from services.notify import delivery, outgoing
from services.notify.channels import DeliveryFailed, Outbox, SmsGateway, WeComRobot
from services.notify.recipients import Recipient
from services.notify.sender import Sender
from tests.support.peers import http_peer
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.unit.notify.factories import CONFIG, TEMPLATES, reminder
from wangge import events

CLAIM = timedelta(seconds=60)


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    with http_peer(tmp_path_factory.mktemp("peer")) as running:
        yield running


def stored(store, notification):
    assert store.insert_new([notification]) == [notification]
    return notification


def test_a_claim_that_ran_out_records_nothing_over_the_claim_that_replaced_it(store):
    notification = stored(store, reminder())
    now = notification["next_attempt_at"]
    assert len(store.claim([notification["_id"]], "first", now, timedelta(0))) == 1
    assert len(store.claim([notification["_id"]], "second", now, CLAIM)) == 1

    assert store.record_outcomes("first", now, [(notification["_id"], None, None)]) == set()
    assert store.record_outcomes("first", now, [(notification["_id"], "late", None)]) == set()
    taken = store.get(notification["_id"])
    assert (taken["status"], taken["claim"], taken["attempts"]) == (delivery.SENDING, "second", 0)

    assert store.record_outcomes("second", now, [(notification["_id"], None, None)]) == {notification["_id"]}
    assert store.get(notification["_id"])["status"] == delivery.SENT


def test_of_two_claims_at_once_one_is_taken(store):
    notification = stored(store, reminder())
    now = notification["next_attempt_at"]
    taken = [store.claim([notification["_id"]], claim, now, CLAIM) for claim in ("a", "b")]
    assert [len(found) for found in taken] == [1, 0]


def test_a_backlog_on_one_channel_does_not_hide_another_channels_due_notifications(store):
    for _ in range(5):
        stored(store, reminder("sms"))
    wecom = stored(store, reminder("wecom"))
    assert store.due_ids("wecom", events.utcnow(), limit=2) == [wecom["_id"]]
    assert len(store.due_ids("sms", events.utcnow(), limit=2)) == 2


def test_any_error_of_a_send_is_a_failed_attempt(store, tmp_path):
    notification = stored(store, reminder("outbox"))
    broken = Outbox({"PATH": str(tmp_path)})  # a directory: writing to it raises IsADirectoryError
    [outcome] = outgoing.deliver(store, broken, CONFIG["DELIVERY"], [notification["_id"]], owner="p1")
    assert outcome.status == "retry" and not outcome.gateway_failed
    found = store.get(notification["_id"])
    assert (found["status"], found["attempts"]) == (delivery.PENDING, 1)
    assert found["last_error"].startswith("IsADirectoryError")
    assert found["next_attempt_at"] > events.utcnow()


def test_a_send_is_cut_off_before_its_claim_runs_out(store, peer):
    requests.post(f"{peer.url}/_control", json={"path": "/slow-sms", "hold": True}, timeout=5).raise_for_status()
    try:
        notification = stored(store, reminder("sms"))
        gateway = SmsGateway({"URL": f"{peer.url}/slow-sms"}, timeout=30)
        settings = {**CONFIG["DELIVERY"], "CLAIM_SECONDS": 1}
        [outcome] = outgoing.deliver(store, gateway, settings, [notification["_id"]], owner="p1")
    finally:
        requests.post(f"{peer.url}/_control", json={"path": "/slow-sms", "hold": False}, timeout=5).raise_for_status()
    assert outcome.status == "retry" and outcome.gateway_failed and outcome.recorded
    assert store.get(notification["_id"])["last_error"] == "no answer within 0.5 s"


def test_a_settled_notification_keeps_its_announcement_until_the_broker_took_it(store):
    notification = stored(store, reminder("outbox"))
    [outcome] = outgoing.deliver(store, Outbox({"PATH": "/dev/null"}), CONFIG["DELIVERY"], [notification["_id"]], owner="p1")
    assert outcome.status == delivery.SENT
    now = events.utcnow()
    grace = timedelta(seconds=10)

    [(announcement_id, [event])] = outgoing.announcements_due(store, "p1", now, grace)
    assert (event["data"]["notification_id"], event["event_type"], event["data"]["attempts"]) == (notification["_id"], events.NOTIFICATION_SENT, 1)
    assert "announcement" not in store.get(notification["_id"])
    # another process leaves it to this one until it may have died
    assert outgoing.announcements_due(store, "p2", now, grace) == []
    assert len(outgoing.announcements_due(store, "p2", now + grace, grace)) == 1

    store.clear_announcements([announcement_id])
    assert outgoing.announcements_due(store, "p1", now, grace) == []


def test_the_last_failure_is_announced_as_failed(store, tmp_path):
    notification = stored(store, reminder("outbox"))
    settings = {**CONFIG["DELIVERY"], "MAX_ATTEMPTS": 1}
    outgoing.deliver(store, Outbox({"PATH": str(tmp_path)}), settings, [notification["_id"]], owner="p1")
    assert store.get(notification["_id"])["status"] == delivery.FAILED
    [(_, [event])] = outgoing.announcements_due(store, "p1", events.utcnow(), timedelta(seconds=10))
    assert event["event_type"] == events.NOTIFICATION_FAILED and event["data"]["error"].startswith("IsADirectoryError")


def test_a_robot_key_reaches_neither_the_stored_error_nor_the_log(store, caplog):
    notification = stored(store, reminder("wecom"))
    robot = WeComRobot({"URL": f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send", "DEFAULT_KEY": "SECRET-robot-key"}, timeout=5)
    with caplog.at_level(logging.DEBUG):
        [outcome] = outgoing.deliver(store, robot, CONFIG["DELIVERY"], [notification["_id"]], owner="p1")
    assert outcome.status == "retry"
    found = store.get(notification["_id"])
    assert "ConnectionError" in found["last_error"]
    assert "SECRET" not in json.dumps(found, default=str)
    assert "SECRET" not in caplog.text and "SECRET" not in json.dumps([vars(r) for r in caplog.records], default=str)


def test_robot_keys_stored_by_earlier_versions_are_removed_at_start(store):
    store.preferences.insert_one({"_id": "w-1", "channel": "wecom", "wecom_key": "SECRET-1"})
    store.notifications.insert_one({**reminder("wecom"), "address": {"wecom_key": "SECRET-2"}})
    store.ensure_indexes()
    assert "SECRET" not in json.dumps(list(store.preferences.find()) + list(store.notifications.find()), default=str)
    assert store.preferences.find_one({"_id": "w-1"})["channel"] == "wecom"


class SlowChannel:
    name = "sms"

    def __init__(self, seconds):
        self.seconds = seconds

    def send(self, notification):
        eventlet.sleep(self.seconds)


def test_a_batch_goes_out_under_one_claim_and_is_recorded_and_announced_together(store, tmp_path):
    batch = [stored(store, reminder("outbox")) for _ in range(5)]
    outcomes = outgoing.deliver(store, Outbox({"PATH": str(tmp_path / "outbox.jsonl")}), CONFIG["DELIVERY"], [n["_id"] for n in batch], owner="p1")
    assert [(o.notification["_id"], o.status, o.recorded) for o in outcomes] == [(n["_id"], delivery.SENT, True) for n in batch]
    [(_, announced)] = outgoing.announcements_due(store, "p1", events.utcnow(), timedelta(seconds=10))
    assert [event["data"]["notification_id"] for event in announced] == [n["_id"] for n in batch]
    lines = [json.loads(line)["id"] for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert lines == [n["_id"] for n in batch]
    assert {(found["status"], found["attempts"], "claim" in found) for found in map(store.get, lines)} == {(delivery.SENT, 1, False)}


class RefusingOne:
    """A gateway that refuses one notification (it may pass later) and takes the others."""
    name = "outbox"

    def __init__(self, refused_id):
        self.refused_id, self.sent = refused_id, []

    def send(self, notification):
        if notification["_id"] == self.refused_id:
            raise DeliveryFailed("HTTP 503: busy")
        self.sent.append(notification["_id"])


def test_each_send_is_logged_once_with_what_it_met_how_long_its_notices_waited_and_nobodys_name(store, caplog):
    stored_earlier = stored(store, reminder("outbox", now=events.utcnow() - timedelta(seconds=30)))
    refused, taken_elsewhere, *rest = [stored(store, reminder("outbox")) for _ in range(4)]
    store.claim([taken_elsewhere["_id"]], "another-process", events.utcnow(), timedelta(seconds=60))
    batch = [stored_earlier, refused, taken_elsewhere, *rest]
    with caplog.at_level(logging.INFO, logger="services.notify.outgoing"):
        outgoing.deliver(store, RefusingOne(refused["_id"]), CONFIG["DELIVERY"], [n["_id"] for n in batch], owner="p1")
    [line] = [record for record in caplog.records if record.getMessage() == "notifications sent"]
    assert (line.channel, line.notifications, line.sent, line.to_retry, line.failed, line.unsent, line.taken_by_another, line.not_recorded) == (
        "outbox", 5, 3, 1, 0, 0, 1, 0)
    assert line.waited_seconds >= 30
    assert all(getattr(line, f"{stage}_seconds") >= 0 for stage in ("claiming", "sending", "recording_and_announcing"))
    written = json.dumps(vars(line), default=str, ensure_ascii=False)
    assert not [personal for personal in ("周婷艳", "13800000011", "member@example.org") if personal in written]


def test_what_a_batch_has_not_sent_by_half_its_claim_goes_back_unsent(store):
    first, second = stored(store, reminder("sms")), stored(store, reminder("sms"))
    settings = {**CONFIG["DELIVERY"], "CLAIM_SECONDS": 1}
    [outcome] = outgoing.deliver(store, SlowChannel(0.8), settings, [first["_id"], second["_id"]], owner="p1")
    assert (outcome.notification["_id"], outcome.status) == (first["_id"], "retry")
    back = store.get(second["_id"])
    assert (back["status"], back["attempts"], "claim" in back) == (delivery.PENDING, 0, False)
    assert store.due_ids("sms", events.utcnow(), limit=5) == [second["_id"]]


def test_a_channel_sends_one_batch_after_another_without_waiting_for_the_timer(store, tmp_path):
    path = tmp_path / "outbox.jsonl"
    config = {"DELIVERY": CONFIG["DELIVERY"], "CHANNELS": {"outbox": {"CONCURRENCY": 1, "BATCH": 2}, "BREAKER": {"FAILURES": 5, "RESET_SECONDS": 30}}}
    sender = Sender(store, {"outbox": Outbox({"PATH": str(path)})}, config)
    waiting = [stored(store, reminder("outbox")) for _ in range(7)]
    sender.offer(waiting[:2])  # the other five only in the store, due
    sent = eventually(lambda: (lambda found: found if len(found) == 7 else None)(
        path.read_text().splitlines() if path.exists() else []), timeout=10)
    assert sorted(json.loads(line)["id"] for line in sent) == sorted(n["_id"] for n in waiting)


def test_outcomes_an_earlier_version_kept_in_their_notification_are_still_announced(store):
    notification = stored(store, reminder("outbox"))
    event = {"event_id": "e-1", "event_type": events.NOTIFICATION_SENT, "data": {"notification_id": notification["_id"]}}
    store.notifications.update_one({"_id": notification["_id"]}, {"$set": {"announcement": {
        "event": event, "queued_at": events.utcnow(), "queued_by": "p0"}}})
    store.ensure_indexes()
    [(_, announced)] = outgoing.announcements_due(store, "p1", events.utcnow() + timedelta(seconds=10), timedelta(seconds=10))
    assert announced == [event]
    assert "announcement" not in store.get(notification["_id"])


def held(store, channel="outbox", claim="lane-1", left=timedelta(seconds=60)):
    """A notification stored already claimed by the process that sends it next."""
    notification = reminder(channel)
    notification.update(status=delivery.SENDING, claim=claim, next_attempt_at=events.utcnow() + left)
    return stored(store, notification)


def test_a_notification_stored_claimed_by_its_sender_goes_out_under_that_claim_without_another(store, tmp_path, monkeypatch):
    notification = held(store)
    monkeypatch.setattr(store, "claim", lambda *args: pytest.fail("claimed again"))
    [outcome] = outgoing.deliver(store, Outbox({"PATH": str(tmp_path / "outbox.jsonl")}), CONFIG["DELIVERY"], [notification["_id"]], "p1",
                                 held={notification["_id"]: notification})
    assert (outcome.status, outcome.recorded) == (delivery.SENT, True)
    assert store.get(notification["_id"])["attempt_log"][-1]["claim"] == "lane-1"


def test_a_held_notification_whose_claim_runs_short_is_claimed_again_before_its_send(store, tmp_path):
    notification = held(store, left=timedelta(seconds=5))  # less than a send may take (30 s)
    [outcome] = outgoing.deliver(store, Outbox({"PATH": str(tmp_path / "outbox.jsonl")}), CONFIG["DELIVERY"], [notification["_id"]], "p1",
                                 held={notification["_id"]: notification})
    assert outcome.status == delivery.SENT
    assert store.get(notification["_id"])["attempt_log"][-1]["claim"] not in (None, "lane-1")


def test_a_held_notification_another_process_took_meanwhile_is_not_sent_again(store, tmp_path):
    notification = held(store, left=timedelta(seconds=5))
    store.notifications.update_one({"_id": notification["_id"]}, {"$set": {"claim": "other-process"}})
    path = tmp_path / "outbox.jsonl"
    assert outgoing.deliver(store, Outbox({"PATH": str(path)}), CONFIG["DELIVERY"], [notification["_id"]], "p1",
                            held={notification["_id"]: notification}) == []
    assert not path.exists()


def test_an_events_notifications_are_stored_claimed_for_a_sender_whose_channel_works(store):
    config = {**CONFIG, "ROUTES": {"member": "outbox"}}
    envelope = {"event_id": "e-held", "event_type": events.STUDY_REMINDER_DUE, "occurred_at": events.utcnow(),
                "data": {"campaign_id": "CP-1", "round": "r", "title": "学习", "grid_id": "G-1", "grid_name": "悦山网格",
                         "due_at": events.utcnow(), "members": []}}
    chosen = [(Recipient("member", "m-held", "周婷艳", "13800000011"), "study_reminder_due.member")]
    [kept] = outgoing.accept_event(store, TEMPLATES, config, envelope, chosen, events.utcnow(), holding=lambda channel: "lane-1")
    found = store.get(kept["_id"])
    assert (found["status"], found["claim"]) == (delivery.SENDING, "lane-1")
    assert store.due_ids("outbox", events.utcnow(), 10) == []


def test_retries_are_looked_for_every_round_held_and_stale_claimed_notifications_every_so_often(store, tmp_path):
    config = {"DELIVERY": {**CONFIG["DELIVERY"], "HELD_AND_STALE_CHECK_SECONDS": 10},
              "CHANNELS": {"outbox": {"CONCURRENCY": 1}, "BREAKER": {"FAILURES": 5, "RESET_SECONDS": 30}}}
    sender = Sender(store, {"outbox": Outbox({"PATH": str(tmp_path / "outbox.jsonl")})}, config)
    asked = []
    due_ids = store.due_ids
    store.due_ids = lambda channel, now, limit, statuses: asked.append(statuses) or due_ids(channel, now, limit, statuses)
    start = events.utcnow()
    for seconds in (0, 1, 2, 11, 12):
        sender.send_due(start + timedelta(seconds=seconds))
    assert asked == [delivery.DUE, (delivery.PENDING,), (delivery.PENDING,), delivery.DUE, (delivery.PENDING,)]
    # a notification held until now, or claimed by a process that died, is found on the next full look
    held = stored(store, reminder("outbox"))
    store.notifications.update_one({"_id": held["_id"]}, {"$set": {"status": delivery.HELD, "next_attempt_at": start}})
    assert due_ids("outbox", start + timedelta(seconds=21), 5, delivery.DUE) == [held["_id"]]
    assert due_ids("outbox", start + timedelta(seconds=21), 5, (delivery.PENDING,)) == []


def test_a_nights_held_messages_go_out_at_the_channels_speed_once_quiet_hours_end(store, tmp_path):
    path = tmp_path / "outbox.jsonl"
    config = {"DELIVERY": {**CONFIG["DELIVERY"], "HELD_AND_STALE_CHECK_SECONDS": 600},
              "CHANNELS": {"outbox": {"CONCURRENCY": 1, "BATCH": 2}, "BREAKER": {"FAILURES": 5, "RESET_SECONDS": 30}}}
    sender = Sender(store, {"outbox": Outbox({"PATH": str(path)})}, config)
    held = [stored(store, reminder("outbox")) for _ in range(9)]
    store.notifications.update_many({"_id": {"$in": [n["_id"] for n in held]}},
                                    {"$set": {"status": delivery.HELD, "next_attempt_at": events.utcnow()}})
    sender.send_due(events.utcnow())  # one look at every status: two of nine fit the lane
    # the rest follow batch after batch, not one batch a look (every 600 s here)
    sent = eventually(lambda: (lambda lines: lines if len(lines) == 9 else None)(
        path.read_text().splitlines() if path.exists() else []), timeout=10)
    assert sorted(json.loads(line)["id"] for line in sent) == sorted(n["_id"] for n in held)
