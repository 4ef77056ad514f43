"""A real Prometheus scrapes the running platform and RabbitMQ: every dashboard
panel's query and every alert expression parses and returns data."""
import json
import re
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml
from kombu import Connection

from devstack.demo_county import build_county
from devstack.processes import ManagedProcess, http_ok, wait_until
from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.polling import eventually, once_registry_read
from tests.support.ports import free_port
from tests.support.services import authorized_session, running_platform
from wangge import events, topology

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RABBITMQ_METRICS = "127.0.0.1:15692"
PLATFORM_ENV = {
    "SLA_FIRST_RESPONSE_MINUTES": "0.03", "SLA_CHECK_INTERVAL_SECONDS": "0.3",
    # residents' texts go to a gateway that is not there: failures to count
    "SMS_GATEWAY_URL": "http://127.0.0.1:9/sms", "DELIVERY_MAX_ATTEMPTS": "1",
    "NOTIFY_WORKER_CHANNEL": "outbox", "NOTIFY_GRID_HEAD_CHANNEL": "outbox", "NOTIFY_LEAD_CHANNEL": "outbox",
    "NOTIFY_DEPARTMENT_CHANNEL": "outbox", "NOTIFY_GROUP_CHANNEL": "outbox", "NOTIFY_OPS_CHANNEL": "outbox",
    "STUDY_SCHEDULER_INTERVAL_SECONDS": "0.3", "STUDY_REPORT_INTERVAL_SECONDS": "0.5", "INDICATORS_GAUGE_INTERVAL_SECONDS": "1",
    "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00",
}


def prometheus_config(services, rules):
    jobs = [{"job_name": name, "static_configs": [{"targets": [service.base_url.removeprefix("http://")]}]} for name, service in services.items()]
    jobs.append({"job_name": "rabbitmq", "metrics_path": "/metrics/detailed", "params": {"family": ["queue_coarse_metrics"]},
                 "static_configs": [{"targets": [RABBITMQ_METRICS]}]})
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(rules)], "scrape_configs": jobs}


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("observability")
    env = {**PLATFORM_ENV, "NOTIFY_OUTBOX_PATH": str(directory / "outbox.jsonl")}
    with running_platform(["intake", "routing", "notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory, extra_env=env) as first:
        routing = first["routing"][0]
        with running_platform(["study"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory,
                              extra_env={**env, "ROUTING_URL": routing.base_url}) as second:
            services = {name: started[0] for name, started in {**first, **second}.items()}
            config = directory / "prometheus.yml"
            config.write_text(yaml.safe_dump(prometheus_config(services, DEPLOY / "prometheus" / "rules" / "wangge.yml")))
            port = free_port()
            prometheus = ManagedProcess("prometheus", [shutil.which("prometheus"), f"--config.file={config}",
                                                        f"--storage.tsdb.path={directory / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                        directory / "prometheus.log").start()
            try:
                wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), 30, "Prometheus is ready", process=prometheus)
                drive_traffic(services, module_amqp_uri)
                yield f"http://127.0.0.1:{port}", services
            finally:
                prometheus.stop()


def drive_traffic(services, amqp_uri):
    """Enough of everything that every panel has something to show, each call with
    the token of whoever makes it in production."""
    intake, routing, study, notify = (services[name] for name in ("intake", "routing", "study", "notify"))
    county = build_county()
    assert routing.as_admin.put(routing.url("/api/v1/registry"), json=county, timeout=120).status_code == 200
    grid = county["towns"][0]["communities"][0]["grids"][0]

    def file(text, **extra):
        # generous: right after the registry's load, a busy test machine was once seen taking 9-19 s to file
        return requests.post(intake.url("/api/v1/requests"), json={"channel": "wechat_group", "text": text, **extra}, timeout=60).json()

    for text in ("南湖花园二区的路灯坏了", "南湖花园二区路灯坏了，晚上很黑"):  # the second merges into the first
        file(text, grid_id=grid["id"], reporter={"phone": "13912340009"})
    file("有人在河边倾倒垃圾", address="不知道哪里")  # town triage
    # grid 02 of 南门社区 has one worker on duty, a user of the test provider
    answered = file("小区门口垃圾没人清运", grid_id=county["towns"][0]["communities"][0]["grids"][1]["id"])
    operator = notify.as_user("operator")
    case_id = eventually(lambda: next((n["case_id"] for n in operator.get(
        notify.url("/api/v1/notifications"), params={"tracking_no": answered["tracking_no"]}, timeout=10).json()["items"]), None))
    worker = routing.as_admin.get(routing.url(f"/api/v1/cases/{case_id}"), timeout=10).json()["assignee"]["id"]
    for action in ("acknowledge", "resolve"):
        routing.as_user(worker).post(routing.url(f"/api/v1/cases/{case_id}/{action}"), json={}, timeout=10).raise_for_status()

    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        publish_request(connection, inbound_body(text=""), message_id=uuid.uuid4().hex, source="hotline12345")  # dead-lettered
        ghost = events.build_event(events.CASE_STATUS_CHANGED, {"case_id": "C-X", "request_id": "x", "tracking_no": "YT-19990101-000001",
                                                                "status": "assigned", "at": events.utcnow()})
        connection.Producer().publish(ghost, exchange=topology.events_exchange("routing"), routing_key=events.CASE_STATUS_CHANGED, serializer="json")

    once_registry_read(lambda: study.as_admin.post(study.url("/api/v1/members/import"), json={"members": [
        {"member_id": "obs-1", "name": "周婷艳", "grid_id": grid["id"], "phone": "13900000001"},
        {"member_id": "obs-2", "name": "林秀英", "grid_id": grid["id"]}]}, timeout=30)).raise_for_status()
    editor = study.as_user("editor")
    content = editor.post(study.url("/api/v1/contents"), json={"title": "学习", "body": "内容"}, timeout=10).json()
    campaign = editor.post(study.url("/api/v1/campaigns"), timeout=30, json={
        "title": "主题教育", "content_ids": [content["content_id"]], "target": {"scope": "grids", "ids": [grid["id"]]},
        "schedule": {"at": (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()}}).json()
    editor.post(study.url("/api/v1/checkins"), json={"campaign_id": campaign["campaign_id"], "member_id": "obs-1", "kind": "read"}, timeout=10).raise_for_status()
    alert = {"status": "firing", "groupKey": "{}:{alertname=\"WanggeDeadLetters\"}", "alerts": [
        {"status": "firing", "labels": {"alertname": "WanggeDeadLetters", "severity": "warning"},
         "annotations": {"summary": "1 message(s) in wangge.inbound.dead"}, "startsAt": "2026-11-29T01:00:00Z", "fingerprint": "abc"}]}
    assert authorized_session("alertmanager").post(notify.url("/api/v1/alerts"), json=alert, timeout=10).status_code == 200


def query(prometheus, expr):
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    return answer["data"]["result"]


def panels():
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel["targets"]:
                yield pytest.param(target["expr"], id=f"{path.stem}: {panel['title']}")


def alert_rules():
    for group in yaml.safe_load((DEPLOY / "prometheus" / "rules" / "wangge.yml").read_text())["groups"]:
        for rule in group["rules"]:
            yield pytest.param(rule["expr"], id=rule["alert"])


@pytest.mark.parametrize("expr", list(panels()))
def test_every_dashboard_panel_returns_data(platform, expr):
    prometheus, _ = platform
    assert eventually(lambda: query(prometheus, expr), timeout=40, interval=1)


@pytest.mark.parametrize("expr", list(alert_rules()))
def test_every_alert_expression_evaluates_over_series_that_exist(platform, expr):
    prometheus, _ = platform
    query(prometheus, expr)
    for metric in set(re.findall(r"\b((?:wangge|rabbitmq)_[a-z_]+|up)\b(?=\s*[{\[)])", expr)):
        assert eventually(lambda: query(prometheus, f"count({metric})"), timeout=40, interval=1), f"no series {metric}"


def test_alerts_reach_the_operators_through_notify(platform):
    _, services = platform
    notify = services["notify"]
    found = notify.as_user("operator").get(notify.url("/api/v1/notifications"), params={"recipient": "ops"}, timeout=10).json()["items"]
    assert found and "WanggeDeadLetters" in found[0]["body"]
    assert found[0]["body"].startswith("【网格平台·监控自动告警】")

