from datetime import timedelta

import pytest

from services.routing import cases, follow_up, sla
from services.routing.lifecycle import Actor, Move
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


def test_a_missed_deadline_of_a_case_waiting_for_a_dispatcher_is_reported_but_does_not_escalate_it():
    waiting = case(status="returned", level="town", assignee=None, awaiting_dispatch=True,
                   dispatch={"reason": "returned", "queue": "town", "town_id": "zhangcheng", "since": NOW})
    plan = cases.plan_sla_tick(waiting, NOW + timedelta(hours=3), POLICY, REGISTRY)
    assert [event_type for event_type, _ in plan.events] == [events.SLA_BREACHED]
    assert "status" not in plan.changes and "level" not in plan.changes


def test_a_department_is_found_by_the_subclass_it_lists_then_the_taxonomys_department_then_the_category():
    departments = [
        {"id": "power", "name": "路灯所", "categories": ["street_lighting"], "contact": {"id": "d-power"}},
        {"id": "water", "name": "自来水公司", "categories": ["water_supply"], "contact": {"id": "d-water"}},
        {"id": "lamps_contractor", "name": "景观灯维保", "categories": ["landscape_lights"], "contact": {"id": "d-lamps"}},
    ]
    registry = RegistrySnapshot(1, towns=[], communities=[], grids=[], departments=departments)
    assert registry.department_for(case(subclass="landscape_lights", responsible_department="power"))["id"] == "lamps_contractor"
    assert registry.department_for(case(subclass="drainage", responsible_department="water", category="sanitation"))["id"] == "water"
    assert registry.department_for(case(subclass="drainage", responsible_department="urban_management"))["id"] == "power"
    assert registry.department_for(case(subclass="x", responsible_department="nobody", category="roads")) is None


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
    plan = cases.plan_escalation(case("escalated", level="town"), Actor("town-head", "town_lead"), "需要供电公司", NOW, POLICY, REGISTRY)
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


WORKER = Actor("G-1-w1", "grid_worker")


def test_resolution_asks_the_resident_for_follow_up_with_a_token_kept_only_as_its_digest():
    token = follow_up.issue(NOW, timedelta(days=14))
    plan = cases.plan_case_move(case("in_progress", awaiting_response=False), Move("resolved", WORKER, "已修好"), NOW, POLICY, token)
    assert [event_type for event_type, _ in plan.events] == [events.CASE_STATUS_CHANGED, events.FOLLOW_UP_REQUESTED]
    assert plan.events[1][1]["follow_up_token"] == token.token
    assert plan.changes["follow_up_token"] == {"digest": follow_up.digest(token.token), "expires_at": NOW + timedelta(days=14), "used_at": None}
    assert token.token not in str(plan.changes)
    assert plan.changes["sla_next_check_at"] is None


def test_a_change_records_who_made_it_and_in_which_role():
    plan = cases.plan_case_move(case("assigned"), Move("acknowledged", WORKER, "收到"), NOW, POLICY)
    assert (plan.timeline[0]["by"], plan.timeline[0]["role"]) == ("G-1-w1", "grid_worker")
    assert plan.events[0][1]["actor"] == "G-1-w1"
    note = cases.plan_note(case(), WORKER, "已联系电工", NOW)
    assert note.pushes["notes"]["by"] == note.timeline[0]["by"] == "G-1-w1"
    assert note.pushes["notes"]["role"] == note.timeline[0]["role"] == "grid_worker"
    step = cases.plan_step(case(), "collect", WORKER, "收集议题", NOW)
    assert (step.pushes["five_steps"]["by"], step.pushes["five_steps"]["role"]) == ("G-1-w1", "grid_worker")


def resolved_with_token(**token_overrides):
    token = follow_up.issue(NOW, timedelta(days=14))
    return token.token, case("resolved", follow_up_token={**token.record, **token_overrides})


def test_not_solved_at_follow_up_reopens_with_fresh_clocks_and_uses_the_token_up():
    token, resolved = resolved_with_token()
    plan = cases.plan_follow_up(resolved, follow_up.digest(token), False, 2, "路灯还是不亮", NOW, POLICY)
    assert plan.changes["status"] == "reopened"
    assert plan.changes["awaiting_response"] is True
    assert plan.changes["follow_up"]["satisfaction"] == 2
    assert plan.changes["follow_up_token"]["used_at"] == NOW
    assert (plan.timeline[0]["by"], plan.timeline[0]["role"]) == ("resident", "resident")


@pytest.mark.parametrize("token_state, refused", [
    ({"used_at": NOW}, follow_up.FollowUpTokenRefused),
    ({"expires_at": NOW}, follow_up.FollowUpTokenRefused),
    ({"digest": follow_up.digest("a later resolution's")}, follow_up.FollowUpTokenUnknown),
])
def test_a_used_expired_or_replaced_token_answers_nothing(token_state, refused):
    token, resolved = resolved_with_token(**token_state)
    with pytest.raises(refused):
        cases.plan_follow_up(resolved, follow_up.digest(token), True, 5, None, NOW, POLICY)


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
    plan = cases.plan_case_move(merged, Move("closed", cases.RESIDENT), NOW, POLICY)
    told = {(event_type, details.get("tracking_no", merged["tracking_no"])) for event_type, details in plan.events}
    assert told == {
        (events.CASE_STATUS_CHANGED, "YT-20261128-000001"), (events.CASE_CLOSED, "YT-20261128-000001"),
        (events.CASE_STATUS_CHANGED, "YT-20261128-000002"), (events.CASE_CLOSED, "YT-20261128-000002"),
    }


def test_a_request_a_system_sends_and_that_merges_into_an_open_case_hears_merged():
    request = {"request_id": "r-2", "tracking_no": "YT-20261128-000002", "source": "hotline12345", "channel": "external",
               "external_ref": "HL-2", "reporter": None}
    plan = cases.plan_merge(case(reporters=[{"request_id": "r-1", "source": "wechat_group", "channel": "wechat_group"}],
                                 reporter_count=1, request_ids=["r-1"]), request, NOW)
    entries = cases.outbox_entries(cases.after(case(reporters=[], reporter_count=1), plan), plan.events, NOW, 4)
    [result] = [entry for entry in entries if entry["event_type"] == "request_result"]
    assert result["routing_key"] == "request.hotline12345.merged"
    assert (result["event"]["external_ref"], result["event"]["tracking_no"]) == ("HL-2", "YT-20261128-000002")


def test_a_residents_own_request_owes_no_system_a_result():
    residents = case(reporters=[{"request_id": "r-1", "source": "wechat_group", "channel": "wechat_group"}])
    plan = cases.plan_case_move(residents, Move("acknowledged", Actor("G-1-w1", "grid_worker")), NOW, POLICY)
    entries = cases.outbox_entries(cases.after(residents, plan), plan.events, NOW, 4)
    assert [entry["event_type"] for entry in entries] == [events.CASE_STATUS_CHANGED]


def test_case_events_carry_the_resolution_deadline_of_the_case_as_it_now_stands():
    open_case = case()
    [entry] = cases.outbox_entries(open_case, [(events.CASE_ASSIGNED, {})], NOW, 4)
    data = events.read_event(events.CASE_ASSIGNED, entry["event"])["data"]
    assert data["resolution_due_at"] == NOW + POLICY.resolution_in_grid
    escalated_at = NOW + timedelta(hours=3)
    plan = cases.plan_sla_tick(open_case, escalated_at, POLICY, REGISTRY)
    escalated = cases.after(open_case, plan)
    [_, status_changed, _] = cases.outbox_entries(escalated, plan.events, escalated_at, 5)
    assert events.read_event(events.CASE_STATUS_CHANGED, status_changed["event"])["data"]["resolution_due_at"] == \
        escalated["sla"]["resolution"]["due_at"] != data["resolution_due_at"]
    [done] = cases.outbox_entries(case(status="resolved"), [(events.CASE_STATUS_CHANGED, {})], NOW, 6)
    assert events.read_event(events.CASE_STATUS_CHANGED, done["event"])["data"]["resolution_due_at"] is None


def test_every_request_of_a_merged_case_hears_the_result_with_every_reporters_name_and_phone_masked():
    reporters = [{"request_id": "r-1", "tracking_no": "YT-20261128-000001", "reporter": {"name": "鲍老伯", "phone": "13912345678"}},
                 {"request_id": "r-2", "tracking_no": "YT-20261128-000002", "reporter": {"name": "林先生"}}]
    record = case(status="acknowledged", request_ids=["r-1", "r-2"], reporters=reporters, reporter_count=2)
    worker = Actor("G-1-w1", "grid_worker")
    resolving = cases.plan_case_move(record, Move("resolved", worker, "已告知鲍老伯和林先生，灯已修好，可拨13912345678回访"), NOW,
                                     sla.policy_for(SLA_CONFIG, "street_lighting", False), follow_up.issue(NOW, timedelta(days=14)))
    outbox = cases.outbox_entries(cases.after(record, resolving), resolving.events, NOW, 4)
    heard = {entry["event"]["data"]["request_id"]: entry["event"]["data"]["result"]
             for entry in outbox if entry["event_type"] == events.CASE_STATUS_CHANGED}
    assert heard == {"r-1": "已告知鲍**和林**，灯已修好，可拨139****5678回访", "r-2": "已告知鲍**和林**，灯已修好，可拨139****5678回访"}
    # while the case is open there is no result
    acknowledging = cases.plan_case_move(case(), Move("acknowledged", worker, "马上去看"), NOW, sla.policy_for(SLA_CONFIG, "street_lighting", False))
    [opened] = [entry for entry in cases.outbox_entries(cases.after(case(), acknowledging), acknowledging.events, NOW, 4)
                if entry["event_type"] == events.CASE_STATUS_CHANGED]
    assert opened["event"]["data"]["result"] is None
