"""At night residents' texts wait for morning; workers still hear at once, urgent
matters go out, and an operator's re-send of a resident's text waits too."""
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from devstack.demo_county import build_county
from tests.e2e.test_notify import load_registry, notifications, peer_env, quiet_window, resend
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.services import running_platform
from wangge.mongo import connect


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("quiet")
    with http_peer(directory) as http, smtp_peer(directory) as smtp:
        # quiet hours from an hour ago to two hours from now
        database = f"notify_quiet_{uuid.uuid4().hex[:8]}"
        env = {**peer_env(http, smtp), **quiet_window(datetime.now(ZoneInfo("UTC")), -timedelta(hours=1), timedelta(hours=3)),
               "NOTIFY_MONGO_DATABASE": database}
        with running_platform(["intake", "routing", "notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                              log_dir=directory, extra_env=env) as services:
            county = build_county()
            assert load_registry(services["routing"][0], county).status_code == 200
            client = connect(mongo_uri)
            try:
                yield {"intake": services["intake"][0], "notify": services["notify"][0], "http": http, "county": county,
                       "notifications": client[database]["notifications"]}
            finally:
                client.close()


def file_request(platform, text):
    grid = platform["county"]["towns"][0]["communities"][0]["grids"][0]
    response = requests.post(platform["intake"].url("/api/v1/requests"), timeout=10, json={
        "channel": "hotline", "text": text, "grid_id": grid["id"], "reporter": {"phone": "13912349999"}})
    return response.json()["tracking_no"]


def test_residents_sms_is_held_until_morning_while_the_worker_hears_now(platform):
    tracking_no = file_request(platform, "小区门口路灯不亮")
    found = eventually(lambda: (lambda items: items if len(items) == 2 and all(n["status"] in ("sent", "held") for n in items) else None)(
        notifications(platform, tracking_no=tracking_no)), timeout=15)
    by_kind = {n["kind"]: n for n in found}
    assert by_kind["case_assigned.worker"]["status"] == "sent"
    held = by_kind["case_assigned.resident"]
    assert held["status"] == "held" and held["attempts"] == 0
    assert datetime.fromisoformat(held["held_until"]) > datetime.now(ZoneInfo("UTC"))
    assert not [r for r in platform["http"].received("/sms") if tracking_no in r["body"]]

    def held_gauge():
        metrics = requests.get(platform["notify"].url("/metrics"), timeout=10).text
        return any(line.startswith("wangge_notify_held_notifications ") and float(line.split()[1]) >= 1 for line in metrics.splitlines())

    assert eventually(held_gauge, timeout=10)


def test_urgent_matters_reach_residents_even_at_night(platform):
    tracking_no = file_request(platform, "楼下有煤气泄漏的味道，很危险")
    eventually(lambda: [r for r in platform["http"].received("/sms") if tracking_no in r["body"]], timeout=15)


def test_an_operators_resend_of_a_residents_text_at_night_waits_for_the_morning_too(platform):
    tracking_no = file_request(platform, "小区健身器材坏了")
    [text] = eventually(lambda: [n for n in notifications(platform, tracking_no=tracking_no) if n["kind"] == "case_assigned.resident"], timeout=15)
    # as a text that failed during the day would be left
    platform["notifications"].update_one({"_id": text["id"]}, {"$set": {"status": "failed", "next_attempt_at": None, "held_until": None}})

    resent = resend(platform, text["id"])
    assert resent.status_code == 200, resent.text
    assert resent.json()["status"] == "held"
    assert datetime.fromisoformat(resent.json()["held_until"]) > datetime.now(ZoneInfo("UTC"))
    [still] = [n for n in notifications(platform, tracking_no=tracking_no) if n["id"] == text["id"]]
    assert still["status"] == "held"
    assert not [r for r in platform["http"].received("/sms") if tracking_no in r["body"]]
