"""Care end to end: routing's registry, intake, notify and two care processes over
RabbitMQ, with a real HTTP peer standing in for the WeCom robot. Each call carries
the token of whoever makes it: grid workers register and visit their residents, the
town lead keeps the public to-do list, the scorecard reads with the services' token."""
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
from kombu import Connection, Queue

from devstack.demo import DEMO_RESIDENTS, load_care
from devstack.demo_county import build_county
from tests.e2e.test_notify import load_registry, notifications, peer_env
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.services import running_platform
from wangge import events, topology
from wangge.logs import mask_name

pytestmark = pytest.mark.e2e

COUNTY = build_county()
GRIDS = [grid for town in COUNTY["towns"] for community in town["communities"] for grid in community["grids"]]
# 南门社区 grid 02: its on-duty worker and its head are users of the test provider; grid 01 is next door
GRID = GRIDS[1]
WORKER, HEAD, NEIGHBOUR = "w-zc-nanmen-02-1", "w-zc-nanmen-02-h", "w-zc-nanmen-01-1"
assert GRID["id"] == "YT-ZC-NANMEN-02" and GRID["workers"][0]["id"] == WORKER and GRID["head"]["id"] == HEAD
COUNTY_ZONE = ZoneInfo("Asia/Shanghai")
OVERDUE_EVENTS = "test-care-visit-overdue"


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("care")
    with Connection(module_amqp_uri) as connection:
        # every visit_overdue care publishes is also kept here, to be counted
        counted = Queue(OVERDUE_EVENTS, exchange=topology.events_exchange("care"), routing_key=events.VISIT_OVERDUE, durable=True)
        counted(connection.default_channel).declare()
        with http_peer(directory) as http, smtp_peer(directory) as smtp:
            env = peer_env(http, smtp)
            with running_platform(["routing", "intake", "notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory,
                                  extra_env=env) as first:
                routing = first["routing"][0]
                assert load_registry(routing, COUNTY).status_code == 200
                care_env = {**env, "ROUTING_URL": routing.base_url, "INTAKE_URL": first["intake"][0].base_url,
                            "CARE_OVERDUE_INTERVAL_SECONDS": "0.3"}
                with running_platform(["care"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory, replicas={"care": 2},
                                      extra_env=care_env) as second:
                    yield {"care": second["care"], "notify": first["notify"][0], "intake": first["intake"][0], "http": http,
                           "logs": directory, "amqp_uri": module_amqp_uri}


def care(platform, principal=WORKER, process=0):
    return platform["care"][process].as_user(principal)


def url(platform, path, process=0):
    return platform["care"][process].url(path)


def register(platform, days_since_visit, kinds=("living_alone",), name=None, principal=WORKER, grid=GRID):
    name = name or f"鲍{uuid.uuid4().hex[:4]}"
    response = care(platform, principal).post(url(platform, "/api/v1/care/residents"), timeout=30, json={
        "name": name, "phone": "13800009999", "grid_id": grid["id"], "address": "南湖花园二区3号楼101", "kinds": list(kinds),
        "notes": "独居，腿脚不便", "last_visited_at": (datetime.now(timezone.utc) - timedelta(days=days_since_visit)).isoformat()})
    assert response.status_code == 201, response.text
    return response.json()["resident_id"], name


def overdue_ids(platform, principal=WORKER):
    answer = care(platform, principal).get(url(platform, "/api/v1/care/overdue", 1), params={"grid_id": GRID["id"]}, timeout=30)
    assert answer.status_code == 200, answer.text
    return [resident["resident_id"] for resident in answer.json()["items"]]


def visit(platform, resident_id, needs=(), **headers):
    response = care(platform).post(url(platform, "/api/v1/care/visits"), headers=headers, timeout=30, json={
        "resident_id": resident_id, "visited_at": datetime.now(timezone.utc).isoformat(), "notes": "老人精神不错", "needs": list(needs)})
    assert response.status_code in (200, 201), response.text
    return response.json()


def today():
    return datetime.now(COUNTY_ZONE).date()


def test_the_demo_data_loads_once_with_its_overdue_resident(platform):
    # first in this module: the demo is added only to a care service without residents
    admin = care(platform, "county-admin")
    load_care(platform["care"][0].base_url, admin)
    load_care(platform["care"][1].base_url, admin)
    residents = admin.get(url(platform, "/api/v1/care/residents"), timeout=30).json()
    assert residents["total"] == len(DEMO_RESIDENTS)
    overdue = admin.get(url(platform, "/api/v1/care/overdue"), params={"grid_id": GRID["id"]}, timeout=30).json()["items"]
    assert [resident["name"] for resident in overdue] == ["林依伯"]
    public = requests.get(url(platform, "/api/v1/public/todo"), timeout=30).json()["items"]
    assert [item["title"] for item in public] == ["南湖花园二区路灯改造"]


def test_an_overdue_resident_is_listed_their_worker_and_then_the_grid_head_hear_and_a_visit_clears_it(platform):
    # last visited 12 days ago, weekly: due 5 days ago, past the grid head's 3 days of grace too
    resident_id, name = register(platform, days_since_visit=12)
    assert resident_id in overdue_ids(platform)

    def notices():
        found = [n for n in notifications(platform, per_page=200) if n["kind"].startswith("visit_overdue.") and resident_id in n["body"]]
        return found if len(found) == 2 and all(n["status"] == "sent" for n in found) else None

    sent = eventually(notices, timeout=60)
    assert {(n["recipient"]["key"], n["kind"]) for n in sent} == {(WORKER, "visit_overdue.worker"), (HEAD, "visit_overdue.grid_head")}
    worker_notice = next(n for n in sent if n["kind"] == "visit_overdue.worker")
    assert mask_name(name) in worker_notice["body"] and name not in worker_notice["body"]

    recorded = visit(platform, resident_id)
    assert resident_id not in overdue_ids(platform)
    due = datetime.fromisoformat(recorded["next_visit_due"])
    assert timedelta(days=6, hours=23) < due - datetime.now(timezone.utc) <= timedelta(days=7)
    detail = care(platform).get(url(platform, f"/api/v1/care/residents/{resident_id}"), timeout=30).json()
    assert (detail["name"], detail["phone"], detail["overdue"]) == (name, "13800009999", False)
    assert [v["visit_id"] for v in detail["visits"]] == [recorded["visit_id"]]


def test_a_need_found_on_a_visit_becomes_a_request_in_intake_linked_both_ways(platform):
    resident_id, name = register(platform, days_since_visit=1)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    recorded = visit(platform, resident_id, needs=["老人的助听器坏了，需要帮忙申请补贴更换"], **key)
    [need] = recorded["needs"]
    assert need["tracking_no"] and need["request_id"]
    again = visit(platform, resident_id, needs=["老人的助听器坏了，需要帮忙申请补贴更换"], **key)
    assert again["visit_id"] == recorded["visit_id"] and again["needs"] == recorded["needs"]

    intake = platform["intake"]
    request = intake.as_user("county-center").get(intake.url(f"/api/v1/requests/{need['tracking_no']}"), timeout=30).json()
    assert (request["channel"], request["external_ref"], request["grid_id"]) == ("visit", recorded["visit_id"], GRID["id"])
    assert request["reporter"]["name"] == name and "助听器" in request["text"]
    shown = care(platform, HEAD).get(url(platform, f"/api/v1/care/residents/{resident_id}"), timeout=30).json()
    assert shown["visits"][0]["needs"][0]["tracking_no"] == need["tracking_no"]


def test_a_volunteer_activity_shows_in_the_report(platform):
    title = f"敬老院义剪 {uuid.uuid4().hex[:4]}"
    recorded = care(platform).post(url(platform, "/api/v1/volunteer/activities"), timeout=30, json={
        "title": title, "grid_id": GRID["id"], "starts_at": datetime.now(timezone.utc).isoformat(), "hours": 2.5,
        "participants": [{"name": "志愿者甲", "phone": "13700000001"}, {"name": "志愿者乙"}, {"name": "志愿者丙"}]})
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["participant_count"] == 3 and "participants" not in recorded.json()
    community = care(platform, "lead-zc-nanmen").post(url(platform, "/api/v1/volunteer/activities"), timeout=30, json={
        "title": "社区环境整治", "community_id": "zc-nanmen", "starts_at": datetime.now(timezone.utc).isoformat(), "hours": 1,
        "participants": [{"name": "志愿者丁"}]})
    assert community.status_code == 201, community.text

    def row(by, key, value):
        answer = care(platform, "county-center").get(url(platform, "/api/v1/volunteer/report", 1), timeout=30,
                                                     params={"by": by, "from": today().isoformat(), "to": today().isoformat()})
        assert answer.status_code == 200, answer.text
        return next(r for r in answer.json()["rows"] if r[key] == value)

    by_grid = row("grid", "grid_id", GRID["id"])
    assert by_grid["activities"] >= 1 and by_grid["participants"] >= 3 and by_grid["hours"] >= 7.5
    by_community = row("community", "community_id", "zc-nanmen")
    assert by_community["activities"] == by_grid["activities"] + 1 and by_community["hours"] == by_grid["hours"] + 1
    assert row("town", "town_id", "zhangcheng")["participants"] == by_community["participants"]


def test_the_public_to_do_list_answers_without_a_token_and_carries_no_personal_data(platform):
    lead = care(platform, "lead-zhangcheng")
    created = lead.post(url(platform, "/api/v1/todo"), timeout=30, json={
        "title": "南湖花园二区路灯改造", "area": "南门社区南湖花园二区", "town_id": "zhangcheng", "community_id": "zc-nanmen",
        "owner_department": "县城管局", "promised_by": (today() + timedelta(days=30)).isoformat(), "progress_notes": "已立项，联系人 13800001111"})
    assert created.status_code == 201, created.text
    item_id = created.json()["item_id"]
    updated = lead.patch(url(platform, f"/api/v1/todo/{item_id}", 1), json={"status": "in_progress", "progress_notes": "已进场施工"}, timeout=30)
    assert updated.status_code == 200 and updated.json()["status_words"] == "办理中"
    refused = care(platform, "lead-chengfeng").patch(url(platform, f"/api/v1/todo/{item_id}"), json={"status": "done"}, timeout=30)
    assert refused.status_code == 403

    public = requests.get(url(platform, "/api/v1/public/todo"), params={"town_id": "zhangcheng"}, timeout=30)
    assert public.status_code == 200
    [item] = [i for i in public.json()["items"] if i["item_id"] == item_id]
    assert (item["status"], item["progress_notes"]) == ("in_progress", "已进场施工")
    assert [entry["status"] for entry in item["history"]] == ["planned", "in_progress"]
    assert "lead-zhangcheng" not in public.text and "13800001111" not in public.text and "138****1111" in public.text


def test_another_grids_worker_is_refused_a_department_reads_masked_and_the_scorecard_reads_counts(platform):
    resident_id, name = register(platform, days_since_visit=2)
    path = f"/api/v1/care/residents/{resident_id}"
    refused = care(platform, NEIGHBOUR).get(url(platform, path), timeout=30)
    assert refused.status_code == 403 and "grid_id" in refused.json()["fields"] and name not in refused.text
    assert care(platform, NEIGHBOUR).get(url(platform, "/api/v1/care/residents"), params={"grid_id": GRID["id"]}, timeout=30).status_code == 403
    assert care(platform, "lead-chengfeng").get(url(platform, path), timeout=30).status_code == 403
    assert care(platform, "lead-zhangcheng").get(url(platform, path), timeout=30).json()["name"] == name

    masked = care(platform, "dept-civil_affairs").get(url(platform, path), timeout=30).json()
    assert (masked["name"], masked["phone"], masked["address"], masked["notes"], masked["masked"]) == (
        mask_name(name), "138****9999", None, None, True)

    indicators = care(platform, "wangge-services").get(url(platform, "/api/v1/care/indicators"), timeout=30, params={
        "by": "grid", "from": (today() - timedelta(days=30)).isoformat(), "to": today().isoformat()})
    assert indicators.status_code == 200, indicators.text
    [row] = [r for r in indicators.json()["rows"] if r["grid_id"] == GRID["id"]]
    assert set(row) == {"grid_id", "visits_due", "visits_on_time"} and row["visits_due"] >= 1


def test_visit_overdue_is_published_once_per_resident_due_time_and_stage_with_two_care_processes(platform):
    assert len(platform["care"]) == 2
    residents = {register(platform, days_since_visit=12)[0] for _ in range(8)}  # both stages due at once

    def published():
        with Connection(platform["amqp_uri"]) as connection:
            queue = Queue(OVERDUE_EVENTS)(connection.default_channel)
            while (message := queue.get(no_ack=True)) is not None:
                body = message.decode()
                published_events.append(body)
        return [e for e in published_events if e["data"]["resident_id"] in residents]

    published_events = []
    eventually(lambda: len(published()) >= 2 * len(residents), timeout=60)
    time.sleep(2)  # a few more rounds of both processes' timers (every 0.3 s), to publish any duplicate
    ours = published()
    assert len(ours) == 2 * len(residents)
    assert sorted((e["data"]["resident_id"], e["data"]["stage"]) for e in ours) == sorted((r, s) for r in residents for s in ("worker", "grid_head"))
    assert len({e["event_id"] for e in ours}) == len(ours)


def test_names_and_phones_stay_out_of_logs_and_metrics_and_each_full_read_is_audited(platform):
    resident_id, name = register(platform, days_since_visit=12, name="林水仙")
    care(platform).get(url(platform, f"/api/v1/care/residents/{resident_id}"), timeout=30)
    eventually(lambda: [n for n in notifications(platform, per_page=200) if resident_id in n["body"]], timeout=60)
    metrics = "".join(requests.get(service.url("/metrics"), timeout=30).text for service in platform["care"])
    assert "wangge_care_overdue_notices_total" in metrics and name not in metrics and "13800009999" not in metrics
    logs = "".join(path.read_text(errors="replace") for path in platform["logs"].glob("care-*.log"))
    assert "care resident data read" in logs and resident_id in logs
    assert name not in logs and "13800009999" not in logs and "南湖花园二区3号楼" not in logs


def test_a_residents_details_change_over_http_and_ending_their_care_erases_them(platform):
    resident_id, name = register(platform, days_since_visit=10)  # overdue
    path = f"/api/v1/care/residents/{resident_id}"
    changed = care(platform).patch(url(platform, path), json={"phone": "13900001111", "notes": None}, timeout=30)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["phone"], changed.json()["notes"]) == ("13900001111", None)
    assert care(platform).get(url(platform, path, 1), timeout=30).json()["phone"] == "13900001111"
    nothing = care(platform).patch(url(platform, path), json={}, timeout=30)
    assert nothing.status_code == 400 and "body" in nothing.json()["fields"]
    wrong = care(platform).patch(url(platform, path), json={"phone": "12345", "kinds": ["astronaut"]}, timeout=30)
    assert wrong.status_code == 400 and {"phone", "kinds"} <= set(wrong.json()["fields"])
    assert care(platform, NEIGHBOUR).patch(url(platform, path), json={"address": "别处"}, timeout=30).status_code == 403
    visit(platform, resident_id, needs=["屋顶漏雨，想请人修一修"])

    ended = care(platform).post(url(platform, f"{path}/end"), json={"reason": "moved_away"}, timeout=30)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["reason"], ended.json()["visits_erased"]) == ("moved_away", 1)
    assert care(platform).get(url(platform, path, 1), timeout=30).status_code == 404
    assert resident_id not in overdue_ids(platform)
    again = care(platform).post(url(platform, f"{path}/end"), json={"reason": "deceased"}, timeout=30)
    assert again.status_code == 200 and again.json()["reason"] == "moved_away"
    unknown = care(platform).post(url(platform, f"{path}/end"), json={"reason": "bored"}, timeout=30)
    assert unknown.status_code == 400 and "reason" in unknown.json()["fields"]
