"""Classification and the dispatcher's queue end to end: intake and routing as
processes, the learned classifier routing trains, the people of the demo county
with tokens from the real identity provider. A doubtful request waits for the
town's dispatcher with the model's suggestions; a worker returns a case that is
not theirs (退单); the dispatcher sends it on (改派), correcting the class, and the
correction comes out of `wangge-admin classifier corrections` as a corpus row."""
import json
import os
import subprocess
import sys

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devstack.demo_county import build_county
from services.routing.learned_classifier import CORPUS_COLUMNS
from services.routing.taxonomy import load_taxonomy
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_platform
from wangge.config import load_config, service_config_path

COUNTY = build_county()
WORKER_02 = "w-zc-nanmen-02-1"  # 南湖花园 (南门社区第二网格), the grid's only worker on duty
GRID_01_WORKERS = {"w-zc-nanmen-01-1", "w-zc-nanmen-01-2", "w-zc-nanmen-01-3"}  # 绿洲小区, the grid beside it
TOWN_LEAD, OTHER_TOWN_LEAD, CENTER, ADMIN = "lead-zhangcheng", "lead-chengfeng", "county-center", "county-admin"
GRID_01, GRID_02 = "YT-ZC-NANMEN-01", "YT-ZC-NANMEN-02"
ADDRESS = "樟城镇南门社区南湖花园二区"
TAXONOMY = load_taxonomy()


def shipped_threshold():
    """The confidence threshold routing runs with (its config file, with this environment)."""
    return load_config(service_config_path("routing"))["CLASSIFIER"]["CONFIDENCE_THRESHOLD"]


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with running_platform(["intake", "routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                          log_dir=tmp_path_factory.mktemp("logs"),
                          extra_env={"ROUTING_CONFIDENCE_THRESHOLD": str(shipped_threshold())}) as services:
        routing = services["routing"][0]
        loaded = routing.as_admin.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=120)
        assert loaded.status_code == 200, loaded.text
        yield services["intake"][0], routing


def file_and_route(intake, routing, text, status):
    filed = requests.post(intake.url("/api/v1/requests"), json={"channel": "wechat_group", "text": text, "address": ADDRESS},
                          timeout=10)
    assert filed.status_code == 201, filed.text
    center = authorized_session(CENTER)
    url = intake.url(filed.json()["url"])
    view = eventually(lambda: (lambda v: v if v["status"] == status and v.get("case_id") else None)(center.get(url, timeout=10).json()),
                      timeout=20)
    return case_of(routing, view["case_id"]), {**view, "url": url}


def call(routing, who, method, path, **body):
    return authorized_session(who).request(method, routing.url(path), json=body if method != "GET" else None, timeout=10)


def case_of(routing, case_id, who=CENTER):
    response = call(routing, who, "GET", f"/api/v1/cases/{case_id}")
    assert response.status_code == 200, response.text
    return response.json()


def queue_ids(routing, who, **params):
    response = authorized_session(who).get(routing.url("/api/v1/dispatch-queue"), params=params, timeout=10)
    assert response.status_code == 200, response.text
    return {item["case_id"]: item for item in response.json()["items"]}


def metric(routing, name, **labels):
    """A sample of routing's /metrics, 0 if it has none yet."""
    for family in text_string_to_metric_families(requests.get(routing.url("/metrics"), timeout=10).text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_a_clear_request_is_dispatched_at_once_in_its_subclass_with_the_top_three(platform):
    intake, routing = platform
    case, view = file_and_route(intake, routing, "南湖花园二区门口的路灯一到晚上就不亮，黑漆漆的", "assigned")
    assert (case["subclass"], case["major"]) == ("street_lighting", TAXONOMY.subclasses["street_lighting"].major)
    assert case["subclass_name"] == TAXONOMY.subclasses["street_lighting"].name
    assert case["awaiting_dispatch"] is False
    assert case["assignee"]["id"] == WORKER_02
    classification = case["classification"]
    assert len(classification["candidates"]) == 3
    assert classification["candidates"][0]["subclass"] == "street_lighting"
    assert classification["probability"] >= classification["threshold"]
    # the resident's tracking view names the class too
    assert (view["subclass"], view["subclass_name"]) == ("street_lighting", case["subclass_name"])


def test_a_doubtful_request_waits_in_the_towns_queue_with_suggestions_until_the_dispatcher_picks(platform):
    intake, routing = platform
    case, _ = file_and_route(intake, routing, "那个东西又坏了", "received")
    classification = case["classification"]
    assert classification["probability"] < classification["threshold"]
    assert case["awaiting_dispatch"] is True and case["assignee"] is None
    assert (case["dispatch"]["reason"], case["dispatch"]["queue"], case["dispatch"]["town_id"]) == ("low_confidence", "town", "zhangcheng")

    queued = queue_ids(routing, TOWN_LEAD)[case["case_id"]]
    assert [c["subclass"] for c in queued["classification"]["candidates"]] == [c["subclass"] for c in classification["candidates"]]
    assert case["case_id"] in queue_ids(routing, CENTER)
    assert case["case_id"] not in queue_ids(routing, OTHER_TOWN_LEAD)
    assert call(routing, WORKER_02, "GET", "/api/v1/dispatch-queue").status_code == 403
    refused = call(routing, OTHER_TOWN_LEAD, "POST", f"/api/v1/cases/{case['case_id']}/dispatch", subclass="road_damage")
    assert refused.status_code == 403, refused.text

    picked = call(routing, TOWN_LEAD, "POST", f"/api/v1/cases/{case['case_id']}/dispatch", subclass="road_damage", note="路面坏了")
    assert picked.status_code == 200, picked.text
    dispatched = picked.json()
    assert (dispatched["status"], dispatched["subclass"], dispatched["grid_id"]) == ("assigned", "road_damage", GRID_02)
    assert dispatched["assignee"]["id"] == WORKER_02
    assert dispatched["awaiting_dispatch"] is False
    assert case["case_id"] not in queue_ids(routing, TOWN_LEAD)
    entry = dispatched["timeline"][-1]
    assert (entry["kind"], entry["by"], entry["role"], entry["to_subclass"]) == ("dispatch", TOWN_LEAD, "town_lead", "road_damage")
    assert metric(routing, "wangge_routing_class_corrections_total", major=case["major"], subclass=classification["subclass"]) >= 1
    assert metric(routing, "wangge_routing_classified_total", major=TAXONOMY.subclasses[classification["subclass"]].major,
                  subclass=classification["subclass"], decision="dispatcher") >= 1


def test_a_worker_returns_a_case_that_is_not_theirs_and_the_dispatcher_sends_it_to_the_right_grid(platform):
    intake, routing = platform
    case, view = file_and_route(intake, routing, "南湖花园二区旁边的井盖不见了，晚上走路很危险", "assigned")
    case_id = case["case_id"]
    assert case["assignee"]["id"] == WORKER_02
    returns_before = metric(routing, "wangge_routing_returns_total", reason="wrong_grid", role="grid_worker")

    missing = call(routing, WORKER_02, "POST", f"/api/v1/cases/{case_id}/return", note="不是我们网格的")
    assert missing.status_code == 400 and "reason" in missing.json()["fields"]
    outsider = call(routing, "w-zc-nanmen-01-1", "POST", f"/api/v1/cases/{case_id}/return", reason="wrong_grid", note="x")
    assert outsider.status_code == 403

    returned = call(routing, WORKER_02, "POST", f"/api/v1/cases/{case_id}/return", reason="wrong_grid", note="井盖在绿洲小区那边")
    assert returned.status_code == 200, returned.text
    body = returned.json()
    assert (body["status"], body["awaiting_dispatch"], body["return_count"]) == ("returned", True, 1)
    assert body["dispatch"]["reason"] == "returned" and body["dispatch"]["return_reason"] == "wrong_grid"
    assert body["returns"][-1]["by"] == WORKER_02 and body["returns"][-1]["assignee"]["id"] == WORKER_02
    again = call(routing, WORKER_02, "POST", f"/api/v1/cases/{case_id}/return", reason="wrong_grid", note="再退")
    assert again.status_code == 409
    mine = call(routing, WORKER_02, "GET", f"/api/v1/workers/{WORKER_02}/cases").json()["items"]
    assert case_id not in {item["case_id"] for item in mine}
    assert queue_ids(routing, TOWN_LEAD)[case_id]["last_return"]["reason"] == "wrong_grid"
    assert metric(routing, "wangge_routing_returns_total", reason="wrong_grid", role="grid_worker") == returns_before + 1
    # the resident (holding the tracking number, no token) reads where it stands in plain words
    public = eventually(lambda: (lambda v: v if v["status"] == "returned" else None)(requests.get(view["url"], timeout=10).json()),
                        timeout=10)
    assert public["status_words"] == "正在重新派遣办理单位"

    moved = call(routing, TOWN_LEAD, "POST", f"/api/v1/cases/{case_id}/dispatch", grid_id=GRID_01, note="绿洲小区的井盖")
    assert moved.status_code == 200, moved.text
    sent = moved.json()
    assert (sent["status"], sent["grid_id"], sent["level"]) == ("assigned", GRID_01, "grid")
    assert sent["assignee"]["id"] in GRID_01_WORKERS
    assert sent["subclass"] == case["subclass"]
    kinds = [entry["kind"] for entry in sent["timeline"]]
    assert kinds.index("returned") < kinds.index("dispatch")
    assert case_id in {item["case_id"] for item in call(routing, sent["assignee"]["id"], "GET", "/api/v1/cases").json()["items"]}


def test_a_dispatcher_can_send_a_returned_case_to_a_department(platform):
    intake, routing = platform
    case, _ = file_and_route(intake, routing, "南湖花园二区的路灯杆被车撞歪了，随时会倒", "assigned")
    case_id = case["case_id"]
    returned = call(routing, WORKER_02, "POST", f"/api/v1/cases/{case_id}/return", reason="wrong_department", note="要路灯所来修")
    assert returned.status_code == 200, returned.text
    elsewhere = call(routing, TOWN_LEAD, "POST", f"/api/v1/cases/{case_id}/dispatch", grid_id="YT-CF-YUZHOU-01")
    assert elsewhere.status_code in (403, 404), elsewhere.text  # another town's grid is the command centre's to choose
    sent = call(routing, TOWN_LEAD, "POST", f"/api/v1/cases/{case_id}/dispatch", department_id="power")
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert (body["level"], body["department"]["id"], body["assignee"]["id"]) == ("department", "power", "dept-power")
    assert call(routing, "dept-power", "GET", f"/api/v1/cases/{case_id}").status_code == 200
    both = call(routing, TOWN_LEAD, "POST", f"/api/v1/cases/{case_id}/dispatch", department_id="power", grid_id=GRID_01)
    assert both.status_code == 400 and "department_id" in both.json()["fields"]


def test_corrections_come_out_as_corpus_rows_with_personal_data_masked(platform, tmp_path):
    intake, routing = platform
    case, _ = file_and_route(intake, routing, "那个东西又坏了，我叫林小明，电话13912345678", "received")
    corrected = call(routing, CENTER, "POST", f"/api/v1/cases/{case['case_id']}/dispatch", subclass="manhole_covers")
    assert corrected.status_code == 200, corrected.text

    output = tmp_path / "corrections.tsv"
    token = authorized_session(ADMIN).headers["Authorization"].split(" ", 1)[1]
    done = admin_command(routing, token, "classifier", "corrections", "--output", str(output))
    assert done.returncode == 0, done.stderr
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == CORPUS_COLUMNS
    rows = [line.split("\t") for line in lines[1:]]
    assert all(split == "train" and subclass in TAXONOMY.subclasses for subclass, split, _ in rows)
    [mine] = [row for row in rows if row[2].startswith("那个东西又坏了，我叫")]
    assert mine[0] == "manhole_covers"
    assert "13912345678" not in mine[2]

    without_token = admin_command(routing, "", "classifier", "corrections")
    assert without_token.returncode == 2 and "WANGGE_API_TOKEN" in without_token.stderr
    worker_token = authorized_session(WORKER_02).headers["Authorization"].split(" ", 1)[1]
    refused = admin_command(routing, worker_token, "classifier", "corrections")
    assert refused.returncode == 1 and "403" in refused.stderr


def test_the_taxonomy_is_served_for_the_dispatchers_picker(platform):
    _, routing = platform
    answer = call(routing, TOWN_LEAD, "GET", "/api/v1/taxonomy")
    assert answer.status_code == 200, answer.text
    served = {sub["code"] for major in answer.json()["majors"] for sub in major["subclasses"]}
    assert served == set(TAXONOMY.subclasses)


def admin_command(routing, token, *args):
    env = {**os.environ, "WANGGE_API_TOKEN": token, "ROUTING_URL": routing.base_url}
    return subprocess.run([sys.executable, "-m", "wangge.admin", *args], env=env, capture_output=True, text=True, timeout=300)


def test_wangge_admin_loads_a_registry_with_the_administrators_token(platform, tmp_path):
    _, routing = platform
    newer = tmp_path / "county.json"
    version = routing.as_admin.get(routing.url("/api/v1/registry"), timeout=10).json()["version"] + 1
    newer.write_text(json.dumps({**COUNTY, "version": version}, ensure_ascii=False), encoding="utf-8")
    token = authorized_session(ADMIN).headers["Authorization"].split(" ", 1)[1]

    assert admin_command(routing, "", "grids", "load", str(newer)).returncode == 2
    loaded = admin_command(routing, token, "grids", "load", str(newer))
    assert loaded.returncode == 0, loaded.stderr
    assert f"registry version {version} loaded" in loaded.stdout
    assert routing.as_admin.get(routing.url("/api/v1/registry"), timeout=10).json()["version"] == version
