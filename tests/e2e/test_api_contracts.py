"""Every service against the OpenAPI document it publishes: schemathesis generates
requests from the document, valid and invalid, and every answer must be one the
document lists (status, content type, body), never a server error; what the
document says is invalid must be refused, and a method a path does not take is 405.

The services run as separate processes over RabbitMQ and the store, with a small
registry and a little of everything filed, so that the examples phase also reads
real records: a path parameter's example is the id of one that exists."""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from devstack.contracts import openapi_file
from devstack.demo_county import build_county
from tests.support.polling import eventually, once_registry_read
from tests.support.services import authorized_session, running_platform
from tests.support.wecom_peer import new_encoding_aes_key

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "routing", "notify", "study", "care")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = ",".join([
    "not_a_server_error",  # no 5xx, whatever is sent
    "status_code_conformance", "content_type_conformance", "response_schema_conformance",  # only documented answers
    "negative_data_rejection",  # what the document says is invalid is refused with a 4xx
    "unsupported_method",  # a method the path does not take is a 405
])
# Enough to meet every documented status of an operation a few times while the four
# runs stay within a few minutes on two cores; WANGGE_API_FUZZ_EXAMPLES raises it locally.
MAX_EXAMPLES = int(os.environ.get("WANGGE_API_FUZZ_EXAMPLES", "50"))
# fixed, so that a failure in CI reproduces with the command schemathesis prints; another seed explores further
SEED = os.environ.get("WANGGE_API_FUZZ_SEED", "20261129")
# Every notice goes to a file; nothing may leave the machine.
NOTIFY_LOCAL = {
    **{f"NOTIFY_{role}_CHANNEL": "outbox" for role in ("WORKER", "GRID_HEAD", "LEAD", "DEPARTMENT", "RESIDENT", "GROUP", "MEMBER", "OPS")},
    "WECOM_WEBHOOK_URL": "http://127.0.0.1:9/wecom", "SMS_GATEWAY_URL": "http://127.0.0.1:9/sms",
    "NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/webhook", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "9",
}
# intake's WeCom callback set up, so that what is sent to it meets its checks rather than a 404
WECOM_ROBOT = {"WECOM_CALLBACK_TOKEN": "contracts", "WECOM_ENCODING_AES_KEY": new_encoding_aes_key()}


def small_county():
    """The demo county cut to one town's first two communities: enough to route, target and locate."""
    county = build_county(version=1)
    town = county["towns"][0]
    return {**county, "towns": [{**town, "communities": town["communities"][:2]}]}


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("contracts")
    env = {**NOTIFY_LOCAL, **WECOM_ROBOT, "NOTIFY_OUTBOX_PATH": str(log_dir / "outbox.jsonl")}
    with running_platform(["routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir, extra_env=env) as first:
        routing = first["routing"][0]
        county = small_county()
        assert routing.as_admin.put(routing.url("/api/v1/registry"), json=county, timeout=60).status_code == 200
        # intake reads routing's taxonomy (its Open311 services) and grids
        with running_platform(["intake", "notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir,
                              extra_env={**env, "ROUTING_URL": routing.base_url}) as second, \
             running_platform(["study", "care"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir,
                              extra_env={**env, "ROUTING_URL": routing.base_url, "INTAKE_URL": second["intake"][0].base_url}) as third:
            services = {name: started[0] for name, started in {**first, **second, **third}.items()}
            yield services, seed_records(services, county)


def seed_records(services, county):
    """One record of each kind, filed the way a client would; returns each path parameter's example."""
    intake, routing, notify, study, care = (services[name] for name in SERVICES)
    grid = county["towns"][0]["communities"][0]["grids"][0]
    filed = requests.post(intake.url("/api/v1/requests"), timeout=10, json={
        "channel": "wechat_group", "text": "南湖花园二区的路灯坏了", "grid_id": grid["id"],
        "reporter": {"name": "林先生", "phone": "13800000001"}}).json()
    centre, operator, editor = authorized_session("county-center"), authorized_session("operator"), authorized_session("editor")
    case_id = eventually(lambda: centre.get(intake.url(filed["url"]), timeout=10).json().get("case_id"), timeout=30)
    notification = eventually(lambda: operator.get(notify.url("/api/v1/notifications"), params={"case_id": case_id},
                                                   timeout=10).json()["items"], timeout=30)[0]
    member = {"member_id": "m-contract-1", "name": "党员甲", "grid_id": grid["id"], "kind": "party_member"}
    imported = once_registry_read(lambda: study.as_admin.post(study.url("/api/v1/members/import"), json={"members": [member]}, timeout=30))
    assert imported.status_code == 200, imported.text
    content = editor.post(study.url("/api/v1/contents"), json={"title": "学习资料", "body": "正文"}, timeout=10).json()
    campaign = editor.post(study.url("/api/v1/campaigns"), timeout=30, json={
        "title": "网格课堂", "content_ids": [content["content_id"]], "target": {"scope": "grids", "ids": [grid["id"]]},
        "schedule": {"at": (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()}}).json()
    session = editor.post(study.url("/api/v1/sessions"), timeout=10, json={
        "grid_id": grid["id"], "team": "网格课堂宣讲队", "kind": "bench", "held_at": datetime.now(timezone.utc).isoformat(),
        "campaign_id": campaign["campaign_id"], "attendees": [member["member_id"]]}).json()
    worker = grid["workers"][0]["id"]
    resident = centre.post(care.url("/api/v1/care/residents"), timeout=30, json={
        "name": "鲍金水", "grid_id": grid["id"], "address": "南湖花园二区", "kinds": ["living_alone"]}).json()
    item = centre.post(care.url("/api/v1/todo"), timeout=30, json={
        "title": "路灯改造", "area": "南湖花园", "town_id": county["towns"][0]["id"], "owner_department": "县城管局",
        "promised_by": "2026-12-31"}).json()
    return {
        "tracking_no": filed["tracking_no"], "case_id": case_id, "grid_id": grid["id"], "worker_id": worker,
        "notification_id": notification["id"], "recipient_key": worker, "content_id": content["content_id"],
        "campaign_id": campaign["campaign_id"], "session_id": session["_id"], "resident_id": resident["resident_id"],
        "item_id": item["item_id"],
        # Open311 (intake): the format of every answer, a service, a request and its token
        "fmt": "json", "service_code": "street_lighting", "service_request_id": filed["tracking_no"], "token": filed["tracking_no"],
    }


def with_examples(document, examples):
    """The document with each path parameter's example set to a record that exists."""
    document = json.loads(json.dumps(document))
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in examples:
                    parameter["example"] = examples[parameter["name"]]
    return document


def test_each_service_serves_the_checked_in_document(platform):
    services, _ = platform
    for name, service in services.items():
        served = requests.get(service.url("/openapi.json"), timeout=10)
        assert served.status_code == 200
        assert served.json() == json.loads(openapi_file(name).read_text(encoding="utf-8")), f"{name}: run `make contracts`"


# routing last: loading a registry edition (PUT /api/v1/registry, fuzzed like the rest:
# generated editions are small) replaces the grids the other services' records name
@pytest.mark.parametrize("name", ["intake", "notify", "study", "care", "routing"])
def test_every_answer_is_documented_and_none_is_a_server_error(platform, name, tmp_path):
    services, examples = platform
    service = services[name]
    document = tmp_path / f"{name}.openapi.json"
    document.write_text(json.dumps(with_examples(requests.get(service.url("/openapi.json"), timeout=10).json(), examples)))
    argv = [
        str(SCHEMATHESIS), "run", str(document), "--url", service.base_url,
        "--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", SEED,
        "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "30",
        "--generation-database", "none", "--no-color", "--output-truncate", "true",
        # as the county's administrator, who may call nearly everything (the rest answers its documented 403)
        "--header", f"Authorization: {authorized_session('county-admin').headers['Authorization']}",
    ]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, f"schemathesis found problems in {name}:\n{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
