"""Requests become cases: intake and routing as separate processes over RabbitMQ,
and the people of the grid registry working them, each within their own area."""
import json
import uuid
from pathlib import Path

import pytest
import requests
from kombu import Connection

from devstack.demo_county import build_county
from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.broker import drain, watch_queue
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_platform
from wangge import events, topology

COUNTY = build_county()
WORKER_02, HEAD_02 = "w-zc-nanmen-02-1", "w-zc-nanmen-02-h"  # 南湖花园 is theirs; -02-1 is its only worker on duty
WORKER_01, COLLEAGUE_01 = "w-zc-nanmen-01-1", "w-zc-nanmen-01-2"  # 绿洲小区, the grid beside it
CENTER = "county-center"


def grid_with_building(name):
    for town in COUNTY["towns"]:
        for community in town["communities"]:
            for grid in community["grids"]:
                if name in grid["buildings"]:
                    return grid
    raise LookupError(name)


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    with running_platform(["intake", "routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir) as services:
        routing = services["routing"][0]
        loaded = routing.as_admin.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=120)
        assert loaded.status_code == 200, loaded.text
        routing.log_file = log_dir / f"routing-{routing.base_url.rsplit(':', 1)[1]}.log"
        yield services["intake"][0], routing


def file_request(intake, **body):
    """The filed answer: ``tracking_no`` and the ``url`` of the resident's view."""
    response = requests.post(intake.url("/api/v1/requests"), json={"channel": "wechat_group", **body}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def tracking(intake, filed):
    """The request's full view (the command centre's): with its grid and case."""
    return authorized_session(CENTER).get(intake.url(filed["url"]), timeout=10).json()


def routed(intake, filed, status="assigned"):
    return eventually(lambda: (lambda view: view if view["status"] == status else None)(tracking(intake, filed)), timeout=15)


def as_user(routing, who):
    """``(method, path, **json) -> response`` for ``who`` against routing."""
    session = authorized_session(who)
    return lambda method, path, **body: session.request(method, routing.url(path), json=body if method != "GET" else None, timeout=10)


def case_of(routing, case_id, who=CENTER):
    response = as_user(routing, who)("GET", f"/api/v1/cases/{case_id}")
    assert response.status_code == 200, response.text
    return response.json()


def case_ids(routing, who, **params):
    answer = authorized_session(who).get(routing.url("/api/v1/cases"), params={"per_page": 500, **params}, timeout=10)
    assert answer.status_code == 200, answer.text
    return {item["case_id"]: item for item in answer.json()["items"]}


def reporter_reads(routing, case_id):
    """The audit lines of routing's log for reads of this case's reporter data."""
    lines = Path(routing.log_file).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if case_id in line and "reporter data read" in line]


# -- locating and classifying --------------------------------------------------------

def test_request_for_a_point_in_a_grid_becomes_an_assigned_case_in_that_grid(platform):
    intake, routing = platform
    grid = COUNTY["towns"][3]["communities"][0]["grids"][1]
    ring = grid["area"]["coordinates"][0]
    inside = {"lon": (ring[0][0] + ring[2][0]) / 2, "lat": (ring[0][1] + ring[2][1]) / 2}
    filed = file_request(intake, text="村口道路有个大坑，电动车摔倒了", location=inside)

    view = routed(intake, filed)
    assert view["grid_id"] == grid["id"]
    assert view["category"] == "roads"
    case = case_of(routing, view["case_id"])
    assert case["located_by"] == "point"
    assert case["assignee"]["id"] in {w["id"] for w in grid["workers"] if w["on_duty"]}
    assert [entry["to"] for entry in case["timeline"] if entry["kind"] == "status"] == ["received", "assigned"]


def test_request_on_the_inbound_exchange_becomes_an_assigned_case(platform, module_amqp_uri):
    intake, _ = platform
    grid = COUNTY["towns"][5]["communities"][1]["grids"][0]
    ring = grid["area"]["coordinates"][0]
    # an address naming no known estate, so the point decides
    body = inbound_body(address="路边", location={"lon": (ring[0][0] + ring[2][0]) / 2, "lat": (ring[0][1] + ring[2][1]) / 2})
    with Connection(module_amqp_uri, transport_options={"confirm_publish": True}) as connection:
        publish_request(connection, body, message_id=uuid.uuid4().hex, source=body["source"])
    integrator = intake.as_user("integrator-hotline12345")

    def assigned():
        found = integrator.get(intake.url("/api/v1/requests"), params={"source": body["source"], "external_ref": body["external_ref"]},
                               timeout=10).json()["items"]
        return found and found[0]["status"] == "assigned" and found[0]

    view = eventually(assigned, timeout=15, interval=0.05)
    assert view["grid_id"] == grid["id"]


def test_the_articles_street_light_is_routed_by_its_estate(platform):
    intake, routing = platform
    grid = grid_with_building("南湖花园二区")
    filed = file_request(intake, text="南湖花园二区的路灯因为海葵台风受损，希望能够帮忙解决一下。", address="樟城镇南门社区南湖花园二区")
    view = routed(intake, filed)
    assert (view["grid_id"], view["category"]) == (grid["id"], "street_lighting")
    assert case_of(routing, view["case_id"])["located_by"] == "building"


def test_near_duplicate_is_merged_and_counts_its_reporters(platform):
    intake, routing = platform
    grid = grid_with_building("悦山小区3号楼")
    first = file_request(intake, text="悦山小区3号楼停水两天了", address="葛岭镇方广社区悦山小区3号楼")
    case_id = routed(intake, first)["case_id"]
    second = file_request(intake, text="悦山小区3号楼停水了，两天没有自来水", address="葛岭镇方广社区悦山小区3号楼")

    merged = routed(intake, second, status="merged")
    assert merged["case_id"] == case_id
    case = case_of(routing, case_id)
    assert case["reporter_count"] == 2 and len(case["request_ids"]) == 2
    assert case["grid_id"] == grid["id"]


# -- working a case ----------------------------------------------------------------------

def test_worker_moves_a_case_to_resolution_and_the_resident_closes_it_with_the_link_once(platform, module_amqp_uri):
    intake, routing = platform
    grid = grid_with_building("南湖花园二区")
    filed = file_request(intake, text=f"南湖花园二区{uuid.uuid4().hex[:4]}号楼楼道灯不亮", grid_id=grid["id"])
    case_id = routed(intake, filed)["case_id"]
    assert case_of(routing, case_id)["assignee"]["id"] == WORKER_02
    worker = as_user(routing, WORKER_02)

    def act(path, **body):
        response = worker("POST", f"/api/v1/cases/{case_id}/{path}", **body)
        assert response.status_code == 200, response.text
        return response.json()

    assert act("acknowledge", note="收到，马上处理")["first_response_at"]
    act("transitions", status="in_progress", actor=WORKER_02)  # an older client naming the caller still works
    act("notes", note="已联系电工")
    with watch_queue(module_amqp_uri, topology.events_exchange("routing"), events.FOLLOW_UP_REQUESTED) as asked:
        assert act("resolve", note="已更换灯泡")["status"] == "resolved"
        [message] = drain(module_amqp_uri, asked, timeout=10, expected=1)
    request = events.read_event(events.FOLLOW_UP_REQUESTED, json.loads(message.body))["data"]
    assert request["case_id"] == case_id and request["actor"] == WORKER_02
    token = request["follow_up_token"]

    answered = requests.post(routing.url(f"/api/v1/follow-up/{token}"), json={"solved": True, "satisfaction": 5, "note": "很满意"}, timeout=10)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"tracking_no": filed["tracking_no"], "status": "closed", "follow_up": {
        "solved": True, "satisfaction": 5, "note": "很满意", "at": answered.json()["follow_up"]["at"]}}
    again = requests.post(routing.url(f"/api/v1/follow-up/{token}"), json={"solved": False, "satisfaction": 1}, timeout=10)
    assert again.status_code == 403 and again.json()["error"] == "follow_up_token_refused"
    unknown = requests.post(routing.url(f"/api/v1/follow-up/{token[:-4]}AAAA"), json={"solved": False, "satisfaction": 1}, timeout=10)
    assert unknown.status_code == 404
    routed(intake, filed, status="closed")

    case = case_of(routing, case_id)
    assert [(entry.get("to"), entry["by"], entry["role"]) for entry in case["timeline"] if entry["kind"] == "status"] == [
        ("received", "routing", "system"), ("assigned", "routing", "system"), ("acknowledged", WORKER_02, "grid_worker"),
        ("in_progress", WORKER_02, "grid_worker"), ("resolved", WORKER_02, "grid_worker"), ("closed", "resident", "resident"),
    ]
    assert [(entry["by"], entry["role"]) for entry in case["timeline"] if entry["kind"] == "note"] == [(WORKER_02, "grid_worker")]
    my_cases = worker("GET", f"/api/v1/workers/{WORKER_02}/cases")
    assert my_cases.status_code == 200 and case_id not in [c["case_id"] for c in my_cases.json()["items"]]


def test_nobody_acts_in_another_persons_name(platform):
    intake, routing = platform
    case_id = routed(intake, file_request(intake, text="南湖花园一区楼道堆满杂物", grid_id=grid_with_building("南湖花园一区")["id"]))["case_id"]
    refused = as_user(routing, WORKER_02)("POST", f"/api/v1/cases/{case_id}/notes", note="代同事记录", actor=HEAD_02)
    assert refused.status_code == 403 and "actor" in refused.json()["fields"]
    assert [entry for entry in case_of(routing, case_id)["timeline"] if entry["kind"] == "note"] == []


def test_illegal_transition_is_refused_naming_the_current_state(platform):
    intake, routing = platform
    filed = file_request(intake, text="南湖花园一区门口垃圾堆积没人清运", grid_id=grid_with_building("南湖花园一区")["id"])
    case_id = routed(intake, filed)["case_id"]
    response = as_user(routing, WORKER_02)("POST", f"/api/v1/cases/{case_id}/transitions", status="closed")
    assert response.status_code == 409
    assert response.json()["current_status"] == "assigned"
    assert case_of(routing, case_id)["status"] == "assigned"


def test_a_case_climbs_through_its_leads_to_the_department_and_closes_after_evaluation(platform):
    intake, routing = platform
    grid = COUNTY["towns"][1]["communities"][0]["grids"][0]
    filed = file_request(intake, text="汤洋村鲍老伯高龄独居，生活困难，需要帮助申报补助", address="城峰镇汤洋村", grid_id=grid["id"])
    case_id = routed(intake, filed)["case_id"]

    def post(who, path, **body):
        return as_user(routing, who)("POST", f"/api/v1/cases/{case_id}/{path}", **body)

    for who in ("w-cf-yuzhou-01-1", "lead-cf-yuzhou", "lead-chengfeng"):
        assert post(who, "escalate", note="需要上级协调").status_code == 200
    case = case_of(routing, case_id)
    assert (case["level"], case["department"]["id"]) == ("department", "civil_affairs")
    assert [(entry["by"], entry["role"], entry["to_level"]) for entry in case["timeline"] if entry["kind"] == "escalation"] == [
        ("w-cf-yuzhou-01-1", "grid_worker", "community"), ("lead-cf-yuzhou", "community_lead", "town"),
        ("lead-chengfeng", "town_lead", "department")]
    department = "dept-civil_affairs"
    assert post(department, "escalate").status_code == 409  # nowhere higher

    for step in ("collect", "survey", "coordinate", "contact_departments"):
        assert post(department, "steps", step=step, note=step).status_code == 200
    refused = post(department, "resolve", note="补助已申报")
    assert refused.status_code == 409 and "evaluation" in refused.json()["message"]
    assert post(department, "steps", step="evaluate", note="评估汇总完成").status_code == 200
    assert post(department, "resolve", note="补助已申报").status_code == 200
    steps = case_of(routing, case_id)["five_steps"]
    assert {(step["by"], step["role"]) for step in steps} == {(department, "department")}


# -- each person within their area ----------------------------------------------------------

def test_a_grid_worker_reads_and_acts_on_their_own_grids_cases_only(platform):
    intake, routing = platform
    own = routed(intake, file_request(intake, text="南湖花园二区路边井盖松动", grid_id=grid_with_building("南湖花园二区")["id"]))["case_id"]
    beside = routed(intake, file_request(intake, text="绿洲小区门口井盖松动", grid_id=grid_with_building("绿洲小区")["id"]))["case_id"]
    worker = as_user(routing, WORKER_02)

    assert worker("GET", f"/api/v1/cases/{beside}").status_code == 403
    for path, body in [("acknowledge", {}), ("notes", {"note": "看看"}), ("transitions", {"status": "in_progress"}),
                       ("escalate", {}), ("steps", {"step": "collect", "note": "收集"}), ("resolve", {})]:
        refused = worker("POST", f"/api/v1/cases/{beside}/{path}", **body)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", (path, refused.text)
    assert case_of(routing, beside)["status"] == "assigned"

    assert worker("GET", f"/api/v1/cases/{own}").status_code == 200
    assert worker("POST", f"/api/v1/cases/{own}/acknowledge").status_code == 200
    listed = case_ids(routing, WORKER_02)
    assert own in listed and beside not in listed
    assert {item["grid_id"] for item in listed.values()} == {grid_with_building("南湖花园二区")["id"]}


def test_a_workers_case_list_is_for_them_and_their_leads(platform):
    _, routing = platform
    path = f"/api/v1/workers/{WORKER_02}/cases"
    for who in (WORKER_02, HEAD_02, "lead-zc-nanmen", "lead-zhangcheng", CENTER):
        assert as_user(routing, who)("GET", path).status_code == 200, who
    for who in (WORKER_01, "lead-chengfeng", "dept-power"):
        assert as_user(routing, who)("GET", path).status_code == 403, who


def test_a_town_lead_lists_only_their_towns_cases(platform):
    intake, routing = platform
    here = routed(intake, file_request(intake, text="绿洲小区路面塌陷", grid_id=grid_with_building("绿洲小区")["id"]))["case_id"]
    elsewhere = routed(intake, file_request(intake, text="汤洋村路面塌陷", grid_id=COUNTY["towns"][1]["communities"][0]["grids"][1]["id"]))["case_id"]

    listed = case_ids(routing, "lead-zhangcheng")
    assert here in listed and elsewhere not in listed
    assert {item["town_id"] for item in listed.values()} == {"zhangcheng"}
    assert elsewhere in case_ids(routing, "lead-chengfeng")
    assert {here, elsewhere} <= set(case_ids(routing, CENTER))


def test_a_department_sees_only_the_cases_escalated_to_it(platform):
    intake, routing = platform
    grid = grid_with_building("绿洲小区")
    escalated = routed(intake, file_request(intake, text="绿洲小区3栋路灯不亮", grid_id=grid["id"]))["case_id"]
    kept = routed(intake, file_request(intake, text="绿洲小区9栋垃圾桶满了没人清运", grid_id=grid["id"]))["case_id"]
    assert escalated != kept
    for _ in range(3):
        assert as_user(routing, CENTER)("POST", f"/api/v1/cases/{escalated}/escalate").status_code == 200
    assert case_of(routing, escalated)["department"]["id"] == "power"

    listed = case_ids(routing, "dept-power")
    assert escalated in listed and kept not in listed
    department = as_user(routing, "dept-power")
    assert department("GET", f"/api/v1/cases/{escalated}").status_code == 200
    assert department("GET", f"/api/v1/cases/{kept}").status_code == 403
    assert department("POST", f"/api/v1/cases/{kept}/escalate").status_code == 403


def test_a_triage_case_of_no_town_is_placed_by_the_command_centre_only(platform):
    intake, routing = platform
    filed = file_request(intake, text="有人在河边倾倒垃圾", address="不知道哪里")
    view = eventually(lambda: (lambda v: v if v["case_id"] else None)(tracking(intake, filed)), timeout=15)
    case_id = view["case_id"]
    triage = case_of(routing, case_id)
    assert triage["triage"] is True
    assert (triage["dispatch"]["reason"], triage["dispatch"]["queue"]) == ("unlocated", "county")
    assert case_id in case_ids(routing, CENTER, triage="true")
    grid = grid_with_building("南湖花园二区")

    refused = as_user(routing, "lead-zhangcheng")("POST", f"/api/v1/cases/{case_id}/place", grid_id=grid["id"])
    assert refused.status_code == 403
    placed = as_user(routing, CENTER)("POST", f"/api/v1/cases/{case_id}/place", grid_id=grid["id"])
    assert placed.status_code == 200, placed.text
    assert (placed.json()["grid_id"], placed.json()["triage"], placed.json()["assignee"]["id"]) == (grid["id"], False, WORKER_02)
    assert [(entry["by"], entry["role"]) for entry in placed.json()["timeline"] if entry.get("to") == "assigned"] == [(CENTER, "county_center")]


def test_a_grid_head_reassigns_within_their_grid_and_the_command_centre_across_grids(platform):
    intake, routing = platform
    case_id = routed(intake, file_request(intake, text="南湖花园一区有只流浪狗天天在楼下叫", grid_id=grid_with_building("南湖花园一区")["id"]))["case_id"]
    head = as_user(routing, HEAD_02)

    within = head("POST", f"/api/v1/cases/{case_id}/assign", worker_id="w-zc-nanmen-02-2", note="换人跟进")
    assert within.status_code == 200 and within.json()["assignee"]["id"] == "w-zc-nanmen-02-2"
    beside = grid_with_building("绿洲小区")
    assert head("POST", f"/api/v1/cases/{case_id}/assign", worker_id=WORKER_01, grid_id=beside["id"]).status_code == 403
    assert as_user(routing, WORKER_02)("POST", f"/api/v1/cases/{case_id}/assign", worker_id=WORKER_02).status_code == 403

    moved = as_user(routing, CENTER)("POST", f"/api/v1/cases/{case_id}/assign", worker_id=WORKER_01, grid_id=beside["id"])
    assert moved.status_code == 200, moved.text
    assert (moved.json()["grid_id"], moved.json()["assignee"]["id"]) == (beside["id"], WORKER_01)
    assert as_user(routing, WORKER_01)("GET", f"/api/v1/cases/{case_id}").status_code == 200
    assert head("GET", f"/api/v1/cases/{case_id}").status_code == 403


# -- the resident's data ------------------------------------------------------------------------

def test_the_reporter_is_shown_to_the_assignee_and_their_leads_and_each_read_is_logged(platform):
    intake, routing = platform
    phone, typed = "13912340001", "13912340002"
    filed = file_request(intake, text=f"绿洲小区5栋电梯困人，请回电{typed}", grid_id=grid_with_building("绿洲小区")["id"],
                         reporter={"name": "林小梅", "phone": phone})
    case_id = routed(intake, filed)["case_id"]
    assignee = case_of(routing, case_id)["assignee"]["id"]
    colleague = COLLEAGUE_01 if assignee == WORKER_01 else WORKER_01
    reads_before = len(reporter_reads(routing, case_id))  # the command centre's, above

    seen = case_of(routing, case_id, who=colleague)
    assert seen["reporters"] == [{"tracking_no": filed["tracking_no"], "name": "林**", "phone": "139****0001", "at": seen["reporters"][0]["at"]}]
    assert typed not in seen["text"] and "139****0002" in seen["text"]
    assert all(typed not in item["text"] for item in case_ids(routing, colleague).values())
    assert len(reporter_reads(routing, case_id)) == reads_before  # nothing disclosed, nothing logged

    shown = case_of(routing, case_id, who=assignee)
    assert (shown["reporters"][0]["name"], shown["reporters"][0]["phone"]) == ("林小梅", phone)
    assert typed in shown["text"]
    assert (case_of(routing, case_id, who="lead-zc-nanmen")["reporters"][0]["phone"]) == phone

    reads = [json.loads(line) for line in reporter_reads(routing, case_id)]
    assert {(read["subject"], read["reason"]) for read in reads[reads_before:]} == {(assignee, "assignee"), ("lead-zc-nanmen", "community_lead")}
    assert not any(phone in line or "林小梅" in line or typed in line for line in reporter_reads(routing, case_id))


# -- the registry -------------------------------------------------------------------------------

def test_grids_are_listed_paged_and_located(platform):
    _, routing = platform
    staff = routing.as_user(WORKER_02)
    page = staff.get(routing.url("/api/v1/grids"), params={"per_page": 100, "page": 2}, timeout=10).json()
    assert page["total"] == 1429 and len(page["items"]) == 100
    assert page["version"] == COUNTY["version"]
    grid = page["items"][0]
    assert set(grid) >= {"grid_id", "name", "town", "community", "centroid"}
    located = staff.get(routing.url("/api/v1/grids/locate"), params=grid["centroid"], timeout=10)
    assert located.json()["grid_id"] == grid["grid_id"]
    assert staff.get(routing.url("/api/v1/grids/locate"), params={"lon": 100, "lat": 10}, timeout=10).status_code == 404


def test_grid_workers_phones_are_for_staff(platform):
    _, routing = platform
    grid = grid_with_building("绿洲小区")
    for_staff = routing.as_user(WORKER_02).get(routing.url(f"/api/v1/grids/{grid['id']}"), timeout=10).json()
    assert for_staff["head"]["phone"] == grid["head"]["phone"]
    for_a_service = routing.as_user("wangge-services").get(routing.url(f"/api/v1/grids/{grid['id']}"), timeout=10).json()
    phones = {for_a_service["head"]["phone"], *(worker["phone"] for worker in for_a_service["workers"])}
    assert all("****" in phone for phone in phones)


def test_a_grid_names_the_heads_of_its_community_and_town(platform):
    _, routing = platform
    town = COUNTY["towns"][0]
    community = town["communities"][0]
    grid = community["grids"][0]
    found = routing.as_user("wangge-services").get(routing.url(f"/api/v1/grids/{grid['id']}"), timeout=10).json()
    assert found["community_head"] == {"id": community["head"]["id"], "name": community["head"]["name"]}
    assert found["town_head"] == {"id": town["head"]["id"], "name": town["head"]["name"]}


def test_registry_file_errors_name_the_key(platform):
    _, routing = platform
    admin = routing.as_admin
    broken = {**COUNTY, "version": 99, "towns": [{**COUNTY["towns"][0], "communities": [{"id": "x", "name": "y", "grids": [{"id": "g"}]}]}]}
    response = admin.put(routing.url("/api/v1/registry"), json=broken, timeout=30)
    assert response.status_code == 400
    assert "towns[0].communities[0].grids[0].name" in response.json()["fields"]
    stale = admin.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=30)
    assert stale.status_code == 409
