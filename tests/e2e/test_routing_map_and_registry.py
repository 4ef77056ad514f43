"""What the web app reads of the registry and the cases at a glance, from routing as a
process: the county map (every grid of the caller's area as GeoJSON with its open and
overdue cases), the grids the signed-in worker heads or works in, and the departments
a dispatcher can send a case to. Tokens from the real identity provider."""
import pytest
import requests

from devstack.demo_county import build_county
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_platform

COUNTY = build_county()
GRIDS = {grid["id"]: {**grid, "town_id": town["id"]}
         for town in COUNTY["towns"] for community in town["communities"] for grid in community["grids"]}
GRID_02 = "YT-ZC-NANMEN-02"  # 南湖花园
WORKER_02, HEAD_02 = "w-zc-nanmen-02-1", "w-zc-nanmen-02-h"
CENTER, TOWN_LEAD, OTHER_TOWN_LEAD = "county-center", "lead-zhangcheng", "lead-chengfeng"
# A first response is due 3 seconds after a case is opened, so a case goes overdue within a test.
FIRST_RESPONSE_MINUTES = "0.05"


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with running_platform(["intake", "routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=tmp_path_factory.mktemp("logs"),
                          extra_env={"SLA_FIRST_RESPONSE_MINUTES": FIRST_RESPONSE_MINUTES}) as services:
        routing = services["routing"][0]
        loaded = routing.as_admin.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=120)
        assert loaded.status_code == 200, loaded.text
        yield services["intake"][0], routing


def get(routing, who, path):
    return authorized_session(who).get(routing.url(path), timeout=30)


def county_map(routing, who):
    response = get(routing, who, "/api/v1/map/grids")
    assert response.status_code == 200, response.text
    return response.json()


def counts_of(collection, grid_id):
    return next(feature["properties"] for feature in collection["features"] if feature["id"] == grid_id)


def file_case(intake, text, address="樟城镇南门社区南湖花园二区"):
    filed = requests.post(intake.url("/api/v1/requests"), timeout=10, json={
        "channel": "wechat_group", "text": text, "address": address})
    assert filed.status_code == 201, filed.text
    view = eventually(lambda: (lambda v: v if v.get("case_id") else None)(
        authorized_session(CENTER).get(intake.url(filed.json()["url"]), timeout=10).json()), timeout=20)
    return view["case_id"]


def test_the_county_map_counts_a_grids_open_and_overdue_cases_and_follows_them(platform):
    intake, routing = platform
    before = county_map(routing, CENTER)
    assert before["type"] == "FeatureCollection"
    assert {feature["id"] for feature in before["features"]} == set(GRIDS)
    feature = next(f for f in before["features"] if f["id"] == GRID_02)
    assert feature["geometry"] == GRIDS[GRID_02]["area"]
    assert (feature["properties"]["name"], feature["properties"]["town_id"]) == (GRIDS[GRID_02]["name"], "zhangcheng")

    case_id = file_case(intake, "南湖花园二区3栋门口的路灯一到晚上就不亮，黑漆漆的")
    opened = counts_of(county_map(routing, CENTER), GRID_02)
    assert opened["open"] == counts_of(before, GRID_02)["open"] + 1
    # nobody answered within the first-response deadline
    late = eventually(lambda: (lambda c: c if c["overdue"] > counts_of(before, GRID_02)["overdue"] else None)(
        counts_of(county_map(routing, CENTER), GRID_02)), timeout=15)
    assert late["overdue"] == late["open"] == opened["open"]

    answered = authorized_session(WORKER_02).post(routing.url(f"/api/v1/cases/{case_id}/acknowledge"), json={"note": "马上去看"}, timeout=10)
    assert answered.status_code == 200, answered.text
    after = counts_of(county_map(routing, CENTER), GRID_02)
    assert (after["open"], after["overdue"]) == (opened["open"], late["overdue"] - 1)


def test_each_caller_sees_the_grids_of_their_area_on_the_map(platform):
    _, routing = platform
    zhangcheng = {grid_id for grid_id, grid in GRIDS.items() if grid["town_id"] == "zhangcheng"}
    assert {f["id"] for f in county_map(routing, TOWN_LEAD)["features"]} == zhangcheng
    assert GRID_02 not in {f["id"] for f in county_map(routing, OTHER_TOWN_LEAD)["features"]}
    assert [f["id"] for f in county_map(routing, WORKER_02)["features"]] == [GRID_02]

    refused = get(routing, "editor", "/api/v1/map/grids")  # study editors read no cases
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden", refused.text
    anonymous = requests.get(routing.url("/api/v1/map/grids"), timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["Content-Type"].startswith("application/json")


def unplaced_of(collection, town_id):
    return next((town for town in collection["unplaced_by_town"] if town["town_id"] == town_id), {"open": 0, "overdue": 0})


def test_a_towns_cases_in_no_grid_yet_count_for_the_town_on_the_map(platform):
    intake, routing = platform
    before = county_map(routing, TOWN_LEAD)
    case_id = file_case(intake, "路边的下水道井盖不见了，很危险", address="樟城镇一个说不清的路口")
    assert get(routing, CENTER, f"/api/v1/cases/{case_id}").json()["grid_id"] is None
    after = county_map(routing, TOWN_LEAD)
    assert unplaced_of(after, "zhangcheng")["open"] == unplaced_of(before, "zhangcheng")["open"] + 1
    # on no grid: the grids' counts are unchanged
    assert [f["properties"]["open"] for f in after["features"]] == [f["properties"]["open"] for f in before["features"]]
    late = eventually(lambda: (lambda town: town if town["overdue"] > unplaced_of(before, "zhangcheng")["overdue"] else None)(
        unplaced_of(county_map(routing, CENTER), "zhangcheng")), timeout=15)
    assert late["overdue"] <= late["open"]
    # another town's lead and the town's grid workers see none of it
    assert unplaced_of(county_map(routing, OTHER_TOWN_LEAD), "zhangcheng") == {"open": 0, "overdue": 0}
    assert county_map(routing, WORKER_02)["unplaced_by_town"] == []

    placed = authorized_session(TOWN_LEAD).post(routing.url(f"/api/v1/cases/{case_id}/place"), json={"grid_id": GRID_02}, timeout=10)
    assert placed.status_code == 200, placed.text
    assert unplaced_of(county_map(routing, TOWN_LEAD), "zhangcheng")["open"] == unplaced_of(before, "zhangcheng")["open"]


def test_a_worker_and_a_head_read_the_grids_they_work_in_and_head(platform):
    _, routing = platform
    worker = get(routing, WORKER_02, "/api/v1/me/grids").json()
    assert worker["subject"] == WORKER_02
    assert [(g["grid_id"], g["role"], g["on_duty"]) for g in worker["items"]] == [(GRID_02, "grid_worker", True)]
    assert worker["items"][0]["name"] == GRIDS[GRID_02]["name"]
    head = get(routing, HEAD_02, "/api/v1/me/grids").json()
    assert [(g["grid_id"], g["role"]) for g in head["items"]] == [(GRID_02, "grid_head")]
    assert get(routing, CENTER, "/api/v1/me/grids").json()["items"] == []


def test_the_registrys_departments_are_the_ones_a_case_can_be_dispatched_to(platform):
    intake, routing = platform
    listed = get(routing, CENTER, "/api/v1/departments").json()
    assert [(d["department_id"], d["name"]) for d in listed["items"]] == sorted(
        (department["id"], department["name"]) for department in COUNTY["departments"])
    assert all(set(d["contact"]) == {"id", "name"} for d in listed["items"])  # no phone or e-mail

    case_id = file_case(intake, "南湖花园二区的自来水管爆了，水漫到楼道里")
    chosen = listed["items"][-1]["department_id"]
    sent = authorized_session(CENTER).post(routing.url(f"/api/v1/cases/{case_id}/dispatch"), json={"department_id": chosen}, timeout=10)
    assert sent.status_code == 200, sent.text
    assert sent.json()["department"]["id"] == chosen
