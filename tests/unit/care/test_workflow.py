"""Care's operations over a real store (no broker; the grid directory and intake are stand-ins)."""
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from services.care import schedule, workflow
from services.care.needs import IntakeUnavailable
from services.care.storage import CareStore
from wangge.auth import Caller, Forbidden
from wangge.config import load_service_config
from wangge.mongo import connect

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
POLICY = schedule.VisitPolicy.from_config(load_service_config("care")["VISITS"])
GRIDS = {
    grid_id: {"grid_id": grid_id, "name": f"{grid_id}网格", "community_id": community, "town_id": "t-1", "head": {"id": f"{grid_id}-head", "name": "李志"},
              "workers": [{"id": f"{grid_id}-w1", "name": "余雪华", "on_duty": True}, {"id": f"{grid_id}-w2", "name": "余玉", "on_duty": True}],
              "community_head": {"id": f"lead-{community}"}, "town_head": {"id": "lead-t-1"}}
    for grid_id, community in (("G-1", "c-1"), ("G-2", "c-1"), ("G-3", "c-2"))
}
WORKER = Caller("G-1-w1", frozenset({"grid_worker"}))
CENTRE = Caller("centre", frozenset({"county_center"}))


class Directory:
    def grid(self, grid_id):
        return GRIDS.get(grid_id)

    def area(self, level, area_id):
        return next((g for g in GRIDS.values() if g[f"{level}_id"] == area_id), None)


class Filing:
    """intake as care sees it: files a need, or does not answer."""

    def __init__(self):
        self.filed, self.down = [], False

    def file(self, visit, resident, number, text):
        if self.down:
            raise IntakeUnavailable("intake away")
        self.filed.append((visit["_id"], number, text))
        return {"text": text, "tracking_no": f"YT-{len(self.filed)}", "request_id": f"r-{len(self.filed)}"}


@pytest.fixture
def store(mongo_uri):
    client = connect(mongo_uri)
    database = client[f"care_unit_{uuid.uuid4().hex[:8]}"]
    store = CareStore(database)
    store.ensure_indexes()
    yield store
    client.drop_database(database.name)
    client.close()


def register(store, caller=CENTRE, now=NOW, **overrides):
    body = {"name": "鲍金水", "phone": "13800001234", "grid_id": "G-1", "address": "汤洋村12号", "kinds": ["living_alone"], "notes": None,
            "last_visited_at": None, "worker_id": None, **overrides}
    return workflow.register_resident(store, Directory(), POLICY, caller, body, now)


def visit(store, resident, at, needs=(), filing=None, key=None, caller=WORKER):
    body = {"resident_id": resident["_id"], "visited_at": at, "by": None, "notes": "身体尚可", "needs": list(needs)}
    return workflow.record_visit(store, Directory(), POLICY, filing or Filing(), caller, body, at, key)


def overdue(store, now, grid_id="G-1"):
    found, _, _ = workflow.list_residents(store, Directory(), CENTRE, {"grid_id": grid_id, "page": 1, "per_page": 50}, now, overdue=True)
    return [r["_id"] for r in found]


def test_a_resident_last_visited_longer_ago_than_their_interval_is_overdue_and_a_visit_clears_it(store):
    resident = register(store, last_visited_at=NOW - timedelta(days=10))
    assert resident["next_visit_due"] == NOW - timedelta(days=3) and resident["worker_id"] == "G-1-w1"
    assert overdue(store, NOW) == [resident["_id"]]
    recorded, created = visit(store, resident, NOW)
    assert created and recorded["by"] == "G-1-w1"
    assert overdue(store, NOW) == []
    assert store.get_resident(resident["_id"])["next_visit_due"] == NOW + timedelta(days=7)


def test_the_next_resident_of_a_grid_goes_to_the_worker_with_fewer(store):
    assert register(store)["worker_id"] == "G-1-w1"
    assert register(store)["worker_id"] == "G-1-w2"
    with pytest.raises(ValidationError):
        register(store, worker_id="G-2-w1")


def test_only_the_grids_people_register_and_visit(store):
    with pytest.raises(Forbidden):
        register(store, caller=Caller("G-2-w1", frozenset({"grid_worker"})))
    resident = register(store)
    with pytest.raises(Forbidden):
        visit(store, resident, NOW, caller=Caller("G-3-w1", frozenset({"grid_worker"})))


def test_a_visit_older_than_the_last_one_changes_no_schedule(store):
    resident = register(store, last_visited_at=NOW - timedelta(days=2))
    visit(store, resident, NOW - timedelta(days=1))
    before = store.get_resident(resident["_id"])["next_visit_due"]
    visit(store, store.get_resident(resident["_id"]), NOW - timedelta(days=5))
    assert store.get_resident(resident["_id"])["next_visit_due"] == before


def test_visits_in_the_future_are_refused(store):
    resident = register(store)
    body = {"resident_id": resident["_id"], "visited_at": NOW + timedelta(hours=1), "by": None, "notes": "", "needs": []}
    with pytest.raises(ValidationError):
        workflow.record_visit(store, Directory(), POLICY, Filing(), WORKER, body, NOW)


def test_needs_are_filed_once_each_even_when_the_visit_is_sent_again(store):
    resident = register(store)
    filing = Filing()
    filing.down = True
    with pytest.raises(IntakeUnavailable) as unavailable:
        visit(store, resident, NOW, needs=["需要轮椅", "屋顶漏雨"], filing=filing, key="k-1")
    visit_id = unavailable.value.details["visit_id"]
    assert store.get_visit(visit_id)["needs"][0]["tracking_no"] is None
    filing.down = False
    again, created = visit(store, resident, NOW, needs=["需要轮椅", "屋顶漏雨"], filing=filing, key="k-1")
    assert not created and again["_id"] == visit_id
    assert [need["tracking_no"] for need in store.get_visit(visit_id)["needs"]] == ["YT-1", "YT-2"]
    visit(store, resident, NOW, needs=["需要轮椅", "屋顶漏雨"], filing=filing, key="k-1")
    assert len(filing.filed) == 2


def test_indicators_count_due_times_in_the_period_and_those_met_in_time(store):
    on_time = register(store, last_visited_at=NOW - timedelta(days=20))  # due NOW-13d
    visit(store, on_time, NOW - timedelta(days=14))  # a day early; next due NOW-7d, visited late below
    visit(store, store.get_resident(on_time["_id"]), NOW - timedelta(days=6))  # next due NOW+1d: not fallen due yet
    register(store, grid_id="G-3", last_visited_at=NOW - timedelta(days=10), worker_id="G-3-w1")  # due NOW-3d, never visited
    start, end = POLICY.period(date(2026, 11, 1), date(2026, 11, 30))
    assert store.visit_indicators("grid", start, min(end, NOW)) == [
        {"grid_id": "G-1", "visits_due": 2, "visits_on_time": 1}, {"grid_id": "G-3", "visits_due": 1, "visits_on_time": 0}]
    assert store.visit_indicators("community", start, min(end, NOW)) == [
        {"community_id": "c-1", "visits_due": 2, "visits_on_time": 1}, {"community_id": "c-2", "visits_due": 1, "visits_on_time": 0}]
    assert store.visit_indicators("town", start, min(end, NOW)) == [{"town_id": "t-1", "visits_due": 3, "visits_on_time": 1}]


def test_each_notice_is_published_once_by_processes_racing_for_it(store):
    residents = [register(store, last_visited_at=NOW - timedelta(days=12)) for _ in range(20)]  # due NOW-5d: both stages
    visited = residents[0]
    visit(store, visited, NOW - timedelta(days=1))  # met late: its notices not sent yet are called off
    published = []

    def publisher(_):
        return workflow.publish_overdue(store, Directory(), lambda kind, event: published.append(event), NOW, NOW + timedelta(minutes=1), 500)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(publisher, range(4)))
    ids = [event["event_id"] for event in published]
    assert len(ids) == len(set(ids)) == 19 * 2
    stages = {event["data"]["stage"] for event in published}
    assert stages == {"worker", "grid_head"}
    event = published[0]["data"]
    assert event["resident_name"] == "鲍**" and "13800001234" not in repr(published) and "汤洋村" not in repr(published)
    assert event["worker"]["id"] in ("G-1-w1", "G-1-w2") and event["grid_head"] == {"id": "G-1-head", "name": "李志"}
    assert publisher(0) == {}  # nothing left


def test_a_notice_whose_process_died_is_published_by_another_once_its_claim_runs_out(store):
    register(store, last_visited_at=NOW - timedelta(days=8))  # due NOW-1d: the worker's notice only
    claimed = store.claim_due_notices(NOW, NOW + timedelta(seconds=60), 10)
    assert [n["stage"] for n in claimed] == ["worker"]
    published = []
    assert workflow.publish_overdue(store, Directory(), lambda kind, event: published.append(event), NOW + timedelta(seconds=30),
                                    NOW + timedelta(seconds=90), 10) == {}
    workflow.publish_overdue(store, Directory(), lambda kind, event: published.append(event), NOW + timedelta(seconds=61),
                             NOW + timedelta(seconds=121), 10)
    assert [event["event_id"] for event in published] == [claimed[0]["_id"]]


def test_volunteer_report_sums_activities_participants_and_hours_per_area(store):
    def activity(**place):
        body = {"title": "敬老院义剪", "grid_id": None, "community_id": None, "starts_at": NOW - timedelta(days=1), "hours": 2.5,
                "participants": [{"name": "志愿者甲", "phone": None}, {"name": "志愿者乙", "phone": None}], **place}
        return workflow.record_activity(store, Directory(), CENTRE, body, NOW)[0]

    activity(grid_id="G-1")
    activity(grid_id="G-2")
    activity(community_id="c-2")
    start, end = POLICY.period(date(2026, 11, 1), date(2026, 11, 30))
    assert store.volunteer_report("grid", start, end) == [
        {"grid_id": "G-1", "activities": 1, "participants": 2, "hours": 5.0}, {"grid_id": "G-2", "activities": 1, "participants": 2, "hours": 5.0}]
    assert store.volunteer_report("community", start, end) == [
        {"community_id": "c-1", "activities": 2, "participants": 4, "hours": 10.0}, {"community_id": "c-2", "activities": 1, "participants": 2, "hours": 5.0}]
    with pytest.raises(Forbidden):
        workflow.record_activity(store, Directory(), Caller("G-3-w1", frozenset({"grid_worker"})), {
            "title": "x", "grid_id": None, "community_id": "c-2", "starts_at": NOW, "hours": 1, "participants": [{"name": "甲"}]}, NOW)


# -- changing a resident, ending their care ---------------------------------------------

def change(store, resident, caller=WORKER, **changes):
    return workflow.change_resident(store, Directory(), POLICY, caller, resident["_id"], changes, NOW)


def test_a_residents_details_change_and_a_move_takes_the_open_due_time_to_the_new_grid(store):
    resident = register(store, last_visited_at=NOW - timedelta(days=10))  # overdue in G-1
    changed = change(store, resident, phone="13900005678", address="汤洋村14号", notes=None)
    assert (changed["phone"], changed["address"]) == ("13900005678", "汤洋村14号")
    assert store.get_resident(resident["_id"])["phone"] == "13900005678"
    moved = change(store, resident, caller=CENTRE, grid_id="G-3")
    assert (moved["grid_id"], moved["community_id"], moved["worker_id"]) == ("G-3", "c-2", "G-3-w1")
    assert moved["next_visit_due"] == resident["next_visit_due"]  # the due time stands
    assert store.open_due(resident["_id"])["grid_id"] == "G-3"  # the new grid answers for it
    assert overdue(store, NOW, "G-3") == [resident["_id"]] and overdue(store, NOW, "G-1") == []


def test_a_change_is_for_the_grids_people_on_both_sides_of_a_move(store):
    resident = register(store)
    with pytest.raises(Forbidden):
        change(store, resident, caller=Caller("G-2-w1", frozenset({"grid_worker"})), phone="13900005678")
    with pytest.raises(Forbidden):
        change(store, resident, grid_id="G-3")  # G-1's worker records nothing for G-3
    with pytest.raises(ValidationError) as refused:
        change(store, resident, worker_id="G-3-w1")
    assert "worker_id" in refused.value.messages
    assert store.get_resident(resident["_id"])["grid_id"] == "G-1"


def test_new_kinds_set_the_interval_from_the_next_visit_on(store):
    resident = register(store, kinds=["living_alone"])
    changed = change(store, resident, kinds=["disabled", "living_alone"])
    assert changed["interval_days"] == POLICY.interval(["disabled", "living_alone"]).total_seconds() / 86400
    assert changed["next_visit_due"] == resident["next_visit_due"]
    visit(store, store.get_resident(resident["_id"]), NOW + timedelta(hours=1))
    assert store.get_resident(resident["_id"])["next_visit_due"] == \
        NOW + timedelta(hours=1) + POLICY.interval(["disabled", "living_alone"])


def test_ending_care_erases_the_residents_personal_data_and_calls_off_their_notices(store):
    resident = register(store, last_visited_at=NOW - timedelta(days=20))
    visit(store, resident, NOW - timedelta(days=14), needs=["屋顶漏雨"], filing=Filing())
    later = store.get_resident(resident["_id"])  # due NOW-7d: missed, with notices due
    ending, erased = workflow.end_care(store, Directory(), WORKER, resident["_id"], "moved_away", NOW)
    assert (ending["reason"], ending["grid_id"], erased) == ("moved_away", "G-1", 1)
    assert store.get_resident(resident["_id"]) is None and overdue(store, NOW) == []
    stored = repr(list(store.visits.find())) + repr(list(store.endings.find()))
    assert "鲍金水" not in stored and "13800001234" not in stored and "汤洋村" not in stored and "身体尚可" not in stored and "漏雨" not in stored
    assert [need["tracking_no"] for need in store.visits.find_one()["needs"]] == ["YT-1"]  # what the indicators count stays
    published = []
    workflow.publish_overdue(store, Directory(), lambda kind, event: published.append(event), NOW, NOW + timedelta(minutes=1), 500)
    assert published == []
    assert store.dues.count_documents({"resident_id": resident["_id"], "due_at": later["next_visit_due"]}) == 1  # missed, on record
    again, erased_again = workflow.end_care(store, Directory(), WORKER, resident["_id"], "deceased", NOW + timedelta(minutes=1))
    assert (again["reason"], again["ended_at"], erased_again) == ("moved_away", NOW, 0)
    with pytest.raises(Forbidden):
        workflow.end_care(store, Directory(), Caller("G-2-w1", frozenset({"grid_worker"})), resident["_id"], "moved_away", NOW)


def test_a_due_time_not_yet_reached_goes_with_the_ending(store):
    resident = register(store)  # due one interval from now
    workflow.end_care(store, Directory(), WORKER, resident["_id"], "declined", NOW)
    assert store.dues.count_documents({"resident_id": resident["_id"]}) == 0
