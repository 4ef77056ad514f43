"""At night residents' texts wait for morning; workers still hear at once, and urgent matters go out."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from devstack.demo_county import build_county
from tests.e2e.test_notify import notifications, peer_env, quiet_window
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.services import running_platform


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("quiet")
    with http_peer(directory) as http, smtp_peer(directory) as smtp:
        # quiet hours from an hour ago to two hours from now
        env = {**peer_env(http, smtp), **quiet_window(datetime.now(ZoneInfo("UTC")), -timedelta(hours=1), timedelta(hours=3))}
        with running_platform(["intake", "routing", "notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                              log_dir=directory, extra_env=env) as services:
            county = build_county()
            assert requests.put(services["routing"][0].url("/api/v1/registry"), json=county, timeout=120).status_code == 200
            yield {"intake": services["intake"][0], "notify": services["notify"][0], "http": http, "county": county}


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
