from datetime import timedelta

from services.routing import cases, sla
from services.routing.lifecycle import Move
from services.routing.registry import RegistrySnapshot
from tests.unit.routing.factories import NOW, SLA_CONFIG, case, grid
from wangge import events

POLICY = sla.policy_for(SLA_CONFIG, "street_lighting", False)
REGISTRY = RegistrySnapshot(
    1,
    towns=[{"id": "zhangcheng", "name": "樟城镇", "head": {"id": "town-head", "name": "陈镇长"}}],
    communities=[{"id": "zc-nanmen", "name": "南门社区", "head": {"id": "community-head", "name": "周书记"}}],
    grids=[grid()],
    departments=[{"id": "power", "name": "县供电公司路灯所", "categories": ["street_lighting"], "contact": {"id": "d-power", "name": "值班员"}}],
)


def test_missed_first_response_escalates_one_level_and_says_so():
    plan = cases.plan_sla_tick(case(), NOW + timedelta(hours=3), POLICY, REGISTRY)
    assert plan.changes["level"] == "community"
    assert plan.changes["assignee"]["id"] == "community-head"
    assert plan.changes["status"] == "escalated"
    kinds = [event_type for event_type, _ in plan.events]
    assert kinds == [events.SLA_BREACHED, events.CASE_STATUS_CHANGED, events.CASE_ESCALATED]
    # the new level gets fresh clocks
    assert plan.changes["sla"]["first_response"]["due_at"] == NOW + timedelta(hours=3) + POLICY.first_response


def test_warning_comes_once():
    at = NOW + timedelta(minutes=100)
    plan = cases.plan_sla_tick(case(), at, POLICY, REGISTRY)
    assert [event_type for event_type, _ in plan.events] == [events.SLA_WARNING]
    warned = case(sla=plan.changes["sla"], sla_next_check_at=plan.changes["sla_next_check_at"])
    assert cases.plan_sla_tick(warned, at, POLICY, REGISTRY) is None


def test_breach_at_department_level_is_reported_without_climbing():
    department_case = case("escalated", level="department")
    plan = cases.plan_sla_tick(department_case, NOW + timedelta(days=20), POLICY, REGISTRY)
    assert "level" not in plan.changes
    assert {event_type for event_type, _ in plan.events} == {events.SLA_BREACHED}


def test_escalation_to_department_picks_the_one_handling_the_category():
    plan = cases.plan_escalation(case("escalated", level="town"), "town-head", "需要供电公司", NOW, POLICY, REGISTRY)
    assert plan.changes["department"]["id"] == "power"
    assert plan.changes["assignee"]["id"] == "d-power"


def test_merged_request_is_told_it_is_already_being_handled():
    request = {"request_id": "r-2", "tracking_no": "YT-20261128-000002", "reporter": {"phone": "13800000007"}}
    plan = cases.plan_merge(case(), request, NOW)
    assert plan.changes["reporter_count"] == 2
    status_event = plan.events[0][1]
    assert (status_event["tracking_no"], status_event["status"]) == ("YT-20261128-000002", "merged")


def test_event_ids_repeat_for_the_same_change():
    record = case()
    first = cases.outbox_entries(record, [(events.CASE_ASSIGNED, {})], NOW, 4)
    again = cases.outbox_entries(record, [(events.CASE_ASSIGNED, {})], NOW, 4)
    assert first[0]["event_id"] == again[0]["event_id"]
    assert events.read_event(events.CASE_ASSIGNED, first[0]["event"])["data"]["grid_head"]["id"] == "G-1-head"


def test_resolution_asks_the_resident_for_follow_up():
    plan = cases.plan_case_move(case("in_progress", awaiting_response=False), Move("resolved", "G-1-w1", "已修好"), NOW, POLICY)
    assert [event_type for event_type, _ in plan.events] == [events.CASE_STATUS_CHANGED, events.FOLLOW_UP_REQUESTED]
    assert plan.changes["sla_next_check_at"] is None


def test_not_solved_at_follow_up_reopens_with_fresh_clocks():
    plan = cases.plan_follow_up(case("resolved"), False, 2, "路灯还是不亮", NOW, POLICY)
    assert plan.changes["status"] == "reopened"
    assert plan.changes["awaiting_response"] is True
    assert plan.changes["follow_up"]["satisfaction"] == 2


def test_events_of_one_change_never_share_an_id():
    # routing was down for days: both clocks breach in the same round
    plan = cases.plan_sla_tick(case(), NOW + timedelta(days=4), POLICY, REGISTRY)
    entries = cases.outbox_entries(cases.after(case(), plan), plan.events, NOW, 4)
    assert len({entry["event_id"] for entry in entries}) == len(entries)
    assert sum(entry["event_type"] == events.SLA_BREACHED for entry in entries) == 2


def test_residents_merged_into_a_case_follow_it_to_closure():
    merged = case("resolved", reporters=[
        {"request_id": "r-1", "tracking_no": "YT-20261128-000001", "reporter": {"phone": "13800000009"}},
        {"request_id": "r-2", "tracking_no": "YT-20261128-000002", "reporter": {"phone": "13800000008"}},
    ], reporter_count=2)
    plan = cases.plan_case_move(merged, Move("closed", "resident"), NOW, POLICY)
    told = {(event_type, details.get("tracking_no", merged["tracking_no"])) for event_type, details in plan.events}
    assert told == {
        (events.CASE_STATUS_CHANGED, "YT-20261128-000001"), (events.CASE_CLOSED, "YT-20261128-000001"),
        (events.CASE_STATUS_CHANGED, "YT-20261128-000002"), (events.CASE_CLOSED, "YT-20261128-000002"),
    }
