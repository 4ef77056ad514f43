"""Each message goes out once, with two notify processes sending: every send is
claimed right before it goes, so a long fan-out to a slow gateway never outlives
its claims; every error of a send is a failed attempt; and a process killed with
sends in flight leaves only those few to be repeated, under the same message id,
which a gateway that deduplicates absorbs."""
import json
import os
import signal
import uuid
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from kombu import Connection

from tests.e2e.test_notify import peer_env, quiet_window
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.services import running_platform
from wangge import events, topology

# a send may take half of it: 2 s
CLAIM_SECONDS = 4
SMS_CONCURRENCY = 4


def control(peer, **command):
    requests.post(f"{peer.url}/_control", json=command, timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("notify-once")
    with http_peer(directory) as http, smtp_peer(directory) as smtp:
        control(http, path="/sms", dedup_header="Idempotency-Key")
        env = {**peer_env(http, smtp), **quiet_window(datetime.now(ZoneInfo("UTC")), timedelta(hours=2), timedelta(hours=1)),
               "DELIVERY_CLAIM_SECONDS": str(CLAIM_SECONDS), "SMS_CONCURRENCY": str(SMS_CONCURRENCY),
               "NOTIFY_ANNOUNCE_INTERVAL_SECONDS": "0.2"}
        with running_platform(["notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory,
                              extra_env=env, replicas={"notify": 2}) as services:
            yield {"notify": services["notify"], "http": http, "amqp_uri": module_amqp_uri}


def publish(platform, source, event_type, data):
    event = events.build_event(event_type, data)
    with Connection(platform["amqp_uri"], transport_options={"confirm_publish": True}) as connection:
        connection.Producer().publish(event, exchange=topology.events_exchange(source), routing_key=event_type, serializer="json")
    return event


def remind_members(platform, count):
    """A study reminder to ``count`` members (SMS); returns the campaign id."""
    campaign_id = f"CP-{uuid.uuid4().hex[:8]}"
    publish(platform, "study", events.STUDY_REMINDER_DUE, {
        "campaign_id": campaign_id, "round": "2026-11-28T01:00:00+00:00", "title": "学习贯彻主题教育", "grid_id": "G-1",
        "grid_name": "悦山网格", "due_at": events.utcnow(), "reminder_number": 1,
        "members": [{"member_id": f"{campaign_id}-m{n}", "name": "周婷艳", "phone": f"1380000{n:04d}"} for n in range(count)],
    })
    return campaign_id


def warn_worker(platform):
    """An SLA warning to a grid worker (WeCom); returns its tracking number."""
    tracking_no = f"YT-20261128-{uuid.uuid4().int % 10**6:06d}"
    publish(platform, "routing", events.SLA_WARNING, {
        "case_id": f"C-{tracking_no}", "request_id": uuid.uuid4().hex, "tracking_no": tracking_no, "status": "assigned",
        "at": events.utcnow(), "grid_id": "G-1", "grid_name": "悦山网格", "category_name": "路灯照明", "level": "grid",
        "assignee": {"id": f"w-{tracking_no}", "name": "李梅", "phone": "13800000001"},
        "sla_clock": "first_response", "due_at": events.utcnow() + timedelta(minutes=30),
    })
    return tracking_no


def notifications(service, **query):
    answer = service.as_user("operator").get(service.url("/api/v1/notifications"), params={**query, "per_page": 500}, timeout=10)
    return answer.json()["items"]


def all_sent(service, count, **query):
    found = notifications(service, **query)
    return found if len(found) == count and all(n["status"] == "sent" for n in found) else None


def sms_requests(platform, notification_ids):
    return [r for r in platform["http"].received("/sms") if json.loads(r["body"])["id"] in notification_ids]


def test_long_fan_out_to_a_slow_gateway_texts_every_member_once(platform):
    control(platform["http"], path="/sms", delay_seconds=0.5)
    try:
        campaign_id = remind_members(platform, 12)  # 6 s of sending one after another: longer than a claim
        sent = eventually(lambda: all_sent(platform["notify"][0], 12, campaign_id=campaign_id), timeout=30)
    finally:
        control(platform["http"], path="/sms", delay_seconds=0)
    texts = Counter(json.loads(r["body"])["id"] for r in sms_requests(platform, {n["id"] for n in sent}))
    assert set(texts) == {n["id"] for n in sent}
    assert set(texts.values()) == {1}
    assert {n["attempts"] for n in sent} == {1}


def test_wecom_answering_200_with_a_page_that_is_not_json_counts_as_a_failed_attempt(platform):
    control(platform["http"], path="/wecom", answer_next=2, status=200, body="<html>502 Bad Gateway</html>")
    tracking_no = warn_worker(platform)
    [notice] = eventually(lambda: all_sent(platform["notify"][0], 1, tracking_no=tracking_no), timeout=20)
    assert notice["attempts"] == 3 and notice["last_error"] is None
    posts = [r for r in platform["http"].received("/wecom") if tracking_no in r["body"]]
    assert len(posts) == 3


def test_process_killed_with_sends_in_flight_leaves_no_text_delivered_twice(platform):
    """Runs last: it kills one of the two processes."""
    control(platform["http"], path="/sms", delay_seconds=1)
    try:
        campaign_id = remind_members(platform, 20)
        stored = eventually(lambda: (lambda found: found if len(found) == 20 else None)(
            notifications(platform["notify"][1], campaign_id=campaign_id)), timeout=15)
        # both processes have texts on the wire (each sends SMS_CONCURRENCY at a time)
        eventually(lambda: len(sms_requests(platform, {n["id"] for n in stored})) >= 2 * SMS_CONCURRENCY, timeout=15)
        killed, survivor = platform["notify"]
        os.kill(killed.process.pid, signal.SIGKILL)
        sent = eventually(lambda: all_sent(survivor, 20, campaign_id=campaign_id), timeout=60)
    finally:
        control(platform["http"], path="/sms", delay_seconds=0)

    requests_made = sms_requests(platform, {n["id"] for n in sent})
    delivered = Counter(json.loads(r["body"])["id"] for r in requests_made if not r["duplicate"])
    assert set(delivered) == {n["id"] for n in sent}
    assert set(delivered.values()) == {1}
    assert all(r["headers"].get("Idempotency-Key") == json.loads(r["body"])["id"] for r in requests_made)
    # only sends that were in flight in the killed process went out again
    assert len(requests_made) - len(delivered) <= SMS_CONCURRENCY
