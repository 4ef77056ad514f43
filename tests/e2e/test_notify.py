"""Notify end to end, against real local peers: an HTTP server standing in for the
WeCom robot, the SMS gateway and webhooks, and an SMTP server. Staff calls carry
tokens of the test provider's users (tests/support/identity.py)."""
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from kombu import Connection

from devstack.demo_county import build_county
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.services import running_platform
from wangge import events, topology

WEBHOOK_SECRET = "test-webhook-secret"
RESIDENT_PHONE = "13912340001"
RESENDS_PER_RECIPIENT = 2


def quiet_window(now, starts_in, lasts):
    """QUIET_HOURS_START/END (county time) for a window relative to now."""
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    return {"QUIET_HOURS_START": (local + starts_in).strftime("%H:%M"), "QUIET_HOURS_END": (local + starts_in + lasts).strftime("%H:%M")}


def peer_env(http, smtp):
    return {
        "WECOM_WEBHOOK_URL": f"{http.url}/wecom", "WECOM_DEFAULT_KEY": "robot-key",
        "SMS_GATEWAY_URL": f"{http.url}/sms", "SMS_GATEWAY_TOKEN": "sms-token",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
        "NOTIFY_WEBHOOK_URL": f"{http.url}/webhook", "NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DELIVERY_INTERVAL_SECONDS": "0.2", "DELIVERY_BACKOFF_SECONDS": "0.2", "DELIVERY_MAX_ATTEMPTS": "3",
    }


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("notify")
    with http_peer(directory) as http, smtp_peer(directory) as smtp:
        # quiet hours that do not cover the test run
        env = {**peer_env(http, smtp), **quiet_window(datetime.now(ZoneInfo("UTC")), timedelta(hours=2), timedelta(hours=1)),
               "NOTIFY_RESEND_PER_RECIPIENT": str(RESENDS_PER_RECIPIENT)}
        with running_platform(["intake", "routing", "notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                              log_dir=directory, extra_env=env) as services:
            county = build_county()
            assert load_registry(services["routing"][0], county).status_code == 200
            yield {"intake": services["intake"][0], "routing": services["routing"][0], "notify": services["notify"][0],
                   "http": http, "smtp": smtp, "county": county, "amqp_uri": module_amqp_uri}


def load_registry(routing, county):
    return routing.as_admin.put(routing.url("/api/v1/registry"), json=county, timeout=120)


def grid(county, town=0, community=0, index=0):
    return county["towns"][town]["communities"][community]["grids"][index]


def file_request(platform, grid_record, text, phone=RESIDENT_PHONE):
    response = requests.post(platform["intake"].url("/api/v1/requests"), timeout=10, json={
        "channel": "wechat_group", "text": text, "grid_id": grid_record["id"], "reporter": {"name": "林先生", "phone": phone}})
    assert response.status_code == 201
    return response.json()["tracking_no"]


def notifications(platform, **query):
    notify = platform["notify"]
    return notify.as_user("operator").get(notify.url("/api/v1/notifications"), params=query, timeout=10).json()["items"]


def notification(platform, notification_id):
    notify = platform["notify"]
    return notify.as_user("operator").get(notify.url(f"/api/v1/notifications/{notification_id}"), timeout=10).json()


def resend(platform, notification_id):
    notify = platform["notify"]
    return notify.as_user("operator").post(notify.url(f"/api/v1/notifications/{notification_id}/resend"), timeout=10)


def choose_channel(platform, principal, recipient_key, body):
    notify = platform["notify"]
    return notify.as_user(principal).put(notify.url(f"/api/v1/preferences/{recipient_key}"), json=body, timeout=10)


def case_id_of(platform, tracking_no):
    return eventually(lambda: next((n["case_id"] for n in notifications(platform, tracking_no=tracking_no) if n["case_id"]), None))


def settle(platform):
    """Wait until earlier tests' messages are all out, so injected failures hit only ours."""
    def quiet():
        pending = [n for n in notifications(platform, per_page=500) if n["status"] in ("pending", "sending")]
        return not pending
    eventually(quiet, timeout=20)


def sms_to(platform, tracking_no):
    return [r for r in platform["http"].received("/sms") if tracking_no in json.loads(r["body"])["content"]]


def test_filed_request_reaches_the_worker_on_wecom_and_the_resident_by_sms(platform):
    record = grid(platform["county"])
    tracking_no = file_request(platform, record, "南湖花园二区的路灯因为海葵台风受损")

    wecom = eventually(lambda: [r for r in platform["http"].received("/wecom") if tracking_no in r["body"]], timeout=15)
    message = json.loads(wecom[0]["body"])
    assert message["msgtype"] == "text" and "key=robot-key" in wecom[0]["query"]
    on_duty = {w["phone"] for w in record["workers"] if w["on_duty"]}
    assert set(message["text"]["mentioned_mobile_list"]) <= on_duty
    assert "路灯照明" in message["text"]["content"]

    [sms] = eventually(lambda: sms_to(platform, tracking_no), timeout=15)
    body = json.loads(sms["body"])
    assert body["phone"] == RESIDENT_PHONE and body["content"].startswith("【永泰网格】")
    assert sms["headers"]["Authorization"] == "Bearer sms-token"

    listed = eventually(lambda: (lambda found: found if all(n["status"] == "sent" for n in found) else None)(
        notifications(platform, tracking_no=tracking_no)))
    assert {(n["kind"], n["channel"], n["status"], n["attempts"]) for n in listed} == {
        ("case_assigned.worker", "wecom", "sent", 1), ("case_assigned.resident", "sms", "sent", 1)}
    assert all(RESIDENT_PHONE not in json.dumps(n) for n in listed)  # masked in the API


def test_department_hears_by_email_when_a_case_reaches_it(platform):
    tracking_no = file_request(platform, grid(platform["county"], 1, 0, 0), "汤洋村鲍老伯高龄独居，生活困难，需要申报补助")
    case_id = case_id_of(platform, tracking_no)
    routing = platform["routing"]
    for _ in range(3):
        escalated = routing.as_admin.post(routing.url(f"/api/v1/cases/{case_id}/escalate"), json={}, timeout=10)
        assert escalated.status_code == 200, escalated.text
    mail = eventually(lambda: [m for m in platform["smtp"].messages() if tracking_no in m.get_content()], timeout=15)
    assert mail[0]["To"].endswith("@example.gov.cn")
    assert mail[0]["Subject"] == "诉求转办职能部门"
    assert "五步工作法" in mail[0].get_content()


def test_webhook_preference_gets_a_signed_message(platform):
    record = grid(platform["county"], 2, 0, 0)
    for w in record["workers"]:  # whoever is chosen hears by webhook
        assert choose_channel(platform, "county-admin", w["id"], {"channel": "webhook"}).status_code == 200
    tracking_no = file_request(platform, record, "楼道积水严重")
    [hook] = eventually(lambda: [r for r in platform["http"].received("/webhook") if tracking_no in r["body"]], timeout=15)
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), hook["body"].encode("utf-8"), hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Wangge-Signature"] == expected
    assert json.loads(hook["body"])["recipient"]["key"] in {w["id"] for w in record["workers"]}


def test_gateway_failing_twice_is_retried_and_delivers_once(platform):
    settle(platform)
    platform["http"].fail_next("/sms", 2)
    tracking_no = file_request(platform, grid(platform["county"], 3, 0, 0), "小区垃圾三天没人清运", phone="13912340002")
    [resident] = eventually(lambda: [n for n in notifications(platform, tracking_no=tracking_no)
                                     if n["channel"] == "sms" and n["status"] == "sent"], timeout=20)
    assert resident["attempts"] == 3
    answered = [r["answered"] for r in sms_to(platform, tracking_no)]
    assert answered == [500, 500, 200]


def test_gateway_that_always_fails_ends_failed_listed_and_resend_works(platform):
    settle(platform)
    platform["http"].fail_next("/sms", 1000)
    tracking_no = file_request(platform, grid(platform["county"], 4, 0, 0), "邻居装修噪音太大", phone="13912340003")
    [failed] = eventually(lambda: [n for n in notifications(platform, status="failed") if n["tracking_no"] == tracking_no], timeout=20)
    assert failed["attempts"] == 3 and "HTTP 500" in failed["last_error"]

    platform["http"].fail_next("/sms", 0)
    assert resend(platform, failed["id"]).status_code == 200
    eventually(lambda: (lambda n: n if n["status"] == "sent" else None)(notification(platform, failed["id"])), timeout=15)
    assert [r["answered"] for r in sms_to(platform, tracking_no)][-1] == 200


def test_resends_to_one_recipient_are_limited_with_a_429_naming_the_limit(platform):
    tracking_no = file_request(platform, grid(platform["county"], 4, 0, 1), "单元楼门禁坏了", phone="13912340005")
    [text] = eventually(lambda: [n for n in notifications(platform, tracking_no=tracking_no) if n["channel"] == "sms" and n["status"] == "sent"], timeout=20)
    for _ in range(RESENDS_PER_RECIPIENT):
        assert resend(platform, text["id"]).status_code == 200
        eventually(lambda: notification(platform, text["id"])["status"] == "sent", timeout=15)
    refused = resend(platform, text["id"])
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "too_many_resends"
    assert refused.json()["limit"] == {"per_recipient": RESENDS_PER_RECIPIENT, "window_minutes": 60.0}
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert len(sms_to(platform, tracking_no)) == 1 + RESENDS_PER_RECIPIENT


def test_a_person_chooses_their_own_channel_and_only_the_administrator_anyone_elses(platform):
    worker, colleague = "w-zc-nanmen-02-1", "w-zc-nanmen-02-h"
    resident = f"resident:{file_request(platform, grid(platform['county'], 6, 0, 0), '楼道灯坏了', phone='13912340006')}"
    assert choose_channel(platform, worker, worker, {"channel": "sms"}).json()["channel"] == "sms"
    for key in (colleague, resident, "group:wx-zc-nanmen-02"):
        refused = choose_channel(platform, worker, key, {"channel": "outbox"})
        assert refused.status_code == 403, refused.text
        assert "recipient_key" in refused.json()["fields"] and "permission" not in refused.json()
    assert choose_channel(platform, "county-admin", resident, {"channel": "outbox"}).status_code == 200


def test_no_caller_can_point_a_message_at_a_wecom_robot_of_their_choosing(platform):
    worker = "w-zc-nanmen-02-1"
    refused = choose_channel(platform, worker, worker, {"channel": "wecom", "wecom_key": "robot-of-another-group"})
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["wecom_key"]


def test_redelivered_event_sends_nothing_twice(platform):
    record = grid(platform["county"], 5, 0, 0)
    worker = record["workers"][0]
    tracking_no = f"YT-20261128-{uuid.uuid4().int % 10**6:06d}"
    event = events.build_event(events.CASE_ASSIGNED, {
        "case_id": f"C-{tracking_no}", "request_id": uuid.uuid4().hex, "tracking_no": tracking_no, "status": "assigned",
        "at": events.utcnow(), "grid_id": record["id"], "grid_name": record["name"], "category_name": "路灯照明",
        "level": "grid", "urgent": False, "summary": "路灯不亮",
        "assignee": {"id": worker["id"], "name": worker["name"], "phone": worker["phone"]},
        "reporter": {"name": "林先生", "phone": "13912340004"},
    })
    with Connection(platform["amqp_uri"], transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        for _ in range(3):
            producer.publish(event, exchange=topology.events_exchange("routing"), routing_key=events.CASE_ASSIGNED, serializer="json")
    eventually(lambda: len(sms_to(platform, tracking_no)) >= 1, timeout=15)
    marker = file_request(platform, record, "路灯又坏了一盏")  # published after: once it is out, the repeats were handled
    eventually(lambda: sms_to(platform, marker), timeout=15)
    assert len(sms_to(platform, tracking_no)) == 1
    assert len([r for r in platform["http"].received("/wecom") if tracking_no in r["body"]]) == 1


def test_logs_never_carry_a_residents_phone_number(platform):
    log_text = platform["notify"].process.log_path.read_text(encoding="utf-8")
    assert "notification" in log_text
    assert RESIDENT_PHONE not in log_text and "13912340003" not in log_text
