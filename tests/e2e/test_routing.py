"""Requests become cases: intake and routing as separate processes over RabbitMQ."""
import uuid

import pytest
import requests
from kombu import Connection

from devstack.demo_county import build_county
from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.polling import eventually
from tests.support.services import running_platform

COUNTY = build_county()


def grid_with_building(name):
    for town in COUNTY["towns"]:
        for community in town["communities"]:
            for grid in community["grids"]:
                if name in grid["buildings"]:
                    return grid
    raise LookupError(name)


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with running_platform(["intake", "routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                          log_dir=tmp_path_factory.mktemp("logs")) as services:
        routing = services["routing"][0]
        loaded = requests.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=120)
        assert loaded.status_code == 200, loaded.text
        yield services["intake"][0], routing


def file_request(intake, **body):
    response = requests.post(intake.url("/api/v1/requests"), json={"channel": "wechat_group", **body}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["tracking_no"]


def tracking(intake, tracking_no):
    return requests.get(intake.url(f"/api/v1/requests/{tracking_no}"), timeout=10).json()


def routed(intake, tracking_no, status="assigned"):
    return eventually(lambda: (lambda view: view if view["status"] == status else None)(tracking(intake, tracking_no)), timeout=15)


def case_of(routing, case_id):
    return requests.get(routing.url(f"/api/v1/cases/{case_id}"), timeout=10).json()


def test_request_for_a_point_in_a_grid_becomes_an_assigned_case_in_that_grid(platform):
    intake, routing = platform
    grid = COUNTY["towns"][3]["communities"][0]["grids"][1]
    ring = grid["area"]["coordinates"][0]
    inside = {"lon": (ring[0][0] + ring[2][0]) / 2, "lat": (ring[0][1] + ring[2][1]) / 2}
    tracking_no = file_request(intake, text="村口道路有个大坑，电动车摔倒了", location=inside)

    view = routed(intake, tracking_no)
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

    def assigned():
        found = requests.get(intake.url("/api/v1/requests"), params={"source": body["source"], "external_ref": body["external_ref"]}, timeout=10).json()["items"]
        return found and found[0]["status"] == "assigned" and found[0]

    view = eventually(assigned, timeout=15, interval=0.05)
    assert view["grid_id"] == grid["id"]


def test_the_articles_street_light_is_routed_by_its_estate(platform):
    intake, routing = platform
    grid = grid_with_building("南湖花园二区")
    tracking_no = file_request(intake, text="南湖花园二区的路灯因为海葵台风受损，希望能够帮忙解决一下。", address="樟城镇南门社区南湖花园二区")
    view = routed(intake, tracking_no)
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


def test_request_nowhere_goes_to_triage_and_is_counted(platform):
    intake, routing = platform
    tracking_no = file_request(intake, text="有人在河边倾倒垃圾", address="不知道哪里")
    view = eventually(lambda: (lambda v: v if v["case_id"] else None)(tracking(intake, tracking_no)), timeout=15)
    case = case_of(routing, view["case_id"])
    assert case["triage"] is True and case["grid_id"] is None and case["status"] == "received"
    triage = requests.get(routing.url("/api/v1/cases"), params={"triage": "true", "per_page": 500}, timeout=10).json()
    assert view["case_id"] in [c["case_id"] for c in triage["items"]]


def test_worker_moves_a_case_to_resolution_and_the_resident_closes_it(platform):
    intake, routing = platform
    grid = grid_with_building("南湖花园二区")
    tracking_no = file_request(intake, text=f"南湖花园二区{uuid.uuid4().hex[:4]}号楼楼道灯不亮", grid_id=grid["id"])
    case_id = routed(intake, tracking_no)["case_id"]
    worker = case_of(routing, case_id)["assignee"]["id"]

    def act(path, **body):
        response = requests.post(routing.url(f"/api/v1/cases/{case_id}/{path}"), json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    assert act("acknowledge", actor=worker, note="收到，马上处理")["first_response_at"]
    act("transitions", status="in_progress", actor=worker)
    act("notes", actor=worker, note="已联系电工")
    assert act("resolve", actor=worker, note="已更换灯泡")["status"] == "resolved"
    closed = act("follow-up", solved=True, satisfaction=5, note="很满意")
    assert closed["status"] == "closed" and closed["follow_up"]["satisfaction"] == 5
    routed(intake, tracking_no, status="closed")

    my_cases = requests.get(routing.url(f"/api/v1/workers/{worker}/cases"), timeout=10).json()["items"]
    assert case_id not in [c["case_id"] for c in my_cases]


def test_illegal_transition_is_refused_naming_the_current_state(platform):
    intake, routing = platform
    tracking_no = file_request(intake, text="小区门口垃圾堆积没人清运", grid_id=COUNTY["towns"][0]["communities"][1]["grids"][0]["id"])
    case_id = routed(intake, tracking_no)["case_id"]
    response = requests.post(routing.url(f"/api/v1/cases/{case_id}/transitions"), json={"status": "closed", "actor": "w-1"}, timeout=10)
    assert response.status_code == 409
    assert response.json()["current_status"] == "assigned"
    assert case_of(routing, case_id)["status"] == "assigned"


def test_escalated_case_reaches_the_department_and_closes_after_evaluation(platform):
    intake, routing = platform
    tracking_no = file_request(intake, text="汤洋村鲍老伯高龄独居，生活困难，需要帮助申报补助", address="城峰镇汤洋村",
                               grid_id=COUNTY["towns"][1]["communities"][0]["grids"][0]["id"])
    case_id = routed(intake, tracking_no)["case_id"]

    def post(path, **body):
        return requests.post(routing.url(f"/api/v1/cases/{case_id}/{path}"), json=body, timeout=10)

    for _ in range(3):
        assert post("escalate", actor="w-x", note="需要上级协调").status_code == 200
    case = case_of(routing, case_id)
    assert (case["level"], case["department"]["id"]) == ("department", "civil_affairs")
    assert post("escalate", actor="w-x").status_code == 409  # nowhere higher

    for step in ("collect", "survey", "coordinate", "contact_departments"):
        assert post("steps", step=step, actor="d-civil_affairs", note=step).status_code == 200
    refused = post("resolve", actor="d-civil_affairs", note="补助已申报")
    assert refused.status_code == 409 and "evaluation" in refused.json()["message"]
    assert post("steps", step="evaluate", actor="d-civil_affairs", note="评估汇总完成").status_code == 200
    assert post("resolve", actor="d-civil_affairs", note="补助已申报").status_code == 200
    assert post("follow-up", solved=True, satisfaction=4).json()["status"] == "closed"


def test_grids_are_listed_paged_and_located(platform):
    _, routing = platform
    page = requests.get(routing.url("/api/v1/grids"), params={"per_page": 100, "page": 2}, timeout=10).json()
    assert page["total"] == 1429 and len(page["items"]) == 100
    assert page["version"] == COUNTY["version"]
    grid = page["items"][0]
    assert set(grid) >= {"grid_id", "name", "town", "community", "centroid"}
    located = requests.get(routing.url("/api/v1/grids/locate"), params=grid["centroid"], timeout=10)
    assert located.json()["grid_id"] == grid["grid_id"]
    assert requests.get(routing.url("/api/v1/grids/locate"), params={"lon": 100, "lat": 10}, timeout=10).status_code == 404


def test_registry_file_errors_name_the_key(platform):
    _, routing = platform
    broken = {**COUNTY, "version": 99, "towns": [{**COUNTY["towns"][0], "communities": [{"id": "x", "name": "y", "grids": [{"id": "g"}]}]}]}
    response = requests.put(routing.url("/api/v1/registry"), json=broken, timeout=30)
    assert response.status_code == 400
    assert "towns[0].communities[0].grids[0].name" in response.json()["fields"]
    stale = requests.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=30)
    assert stale.status_code == 409
