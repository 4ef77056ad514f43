"""The dispatcher's queue in plain functions: when a request waits, 退单 and 改派."""
from datetime import timedelta

import pytest

from services.routing import dispatch, sla
from services.routing.classification import choose_subclass
from services.routing.learned_classifier import Candidate, LearnedClassification
from services.routing.lifecycle import Actor, CaseRuleViolation
from tests.unit.routing.factories import NOW, SLA_CONFIG, case, grid
from wangge import events

WORKER = Actor("G-1-w1", "grid_worker")
TOWN_LEAD = Actor("town-head", "town_lead")
DEPARTMENT = Actor("dept-power", "department")
POLICY = sla.policy_for(SLA_CONFIG, "street_lighting", False)


def result(*ranked):
    candidates = tuple(Candidate(code, "major", code, p) for code, p in ranked)
    return LearnedClassification(candidates[0].subclass, "major", candidates[0].probability, candidates, False, "simple",
                                 "power", "street_lighting", ())


def test_a_request_is_dispatched_at_once_only_when_its_top_class_reaches_the_threshold():
    assert choose_subclass(result(("street_lighting", 0.81), ("trees", 0.1)), None, 0.8) == ("street_lighting", True)
    assert choose_subclass(result(("street_lighting", 0.79), ("trees", 0.1)), None, 0.8) == ("street_lighting", False)


def test_a_senders_class_settles_a_doubtful_request_only_if_the_model_ranks_it_in_its_top_three():
    doubtful = result(("street_lighting", 0.4), ("trees", 0.3), ("road_damage", 0.2))
    assert choose_subclass(doubtful, "road_damage", 0.8) == ("road_damage", True)
    assert choose_subclass(doubtful, "noise", 0.8) == ("street_lighting", False)


def test_a_returned_case_leaves_its_assignee_and_waits_in_its_towns_queue():
    plan = dispatch.plan_return(case(), "wrong_grid", WORKER, "这是隔壁网格的路灯", NOW)
    assert plan.changes["status"] == "returned"
    assert plan.changes["assignee"] is None
    assert plan.changes["awaiting_dispatch"] is True
    assert plan.changes["dispatch"] == {"reason": "returned", "queue": "town", "town_id": "zhangcheng", "since": NOW,
                                        "return_reason": "wrong_grid"}
    assert plan.changes["return_count"] == 1
    assert plan.pushes["returns"]["assignee"]["id"] == "G-1-w1"
    [entry] = plan.timeline
    assert (entry["kind"], entry["reason"], entry["by"], entry["role"]) == ("returned", "wrong_grid", "G-1-w1", "grid_worker")
    [(event_type, details)] = plan.events
    assert (event_type, details["return_reason"]) == (events.CASE_STATUS_CHANGED, "wrong_grid")


@pytest.mark.parametrize("returner", [TOWN_LEAD, DEPARTMENT])
def test_a_case_a_town_lead_or_a_department_returns_goes_to_the_county(returner):
    plan = dispatch.plan_return(case(level="department" if returner is DEPARTMENT else "town"), "wrong_department", returner, "不归我们管", NOW)
    assert plan.changes["dispatch"]["queue"] == "county"


def test_a_case_already_waiting_cannot_be_returned_again():
    waiting = case(status="returned", awaiting_dispatch=True, assignee=None)
    with pytest.raises(CaseRuleViolation, match="already waits"):
        dispatch.plan_return(waiting, "wrong_grid", WORKER, "again", NOW)


def test_a_resolved_case_cannot_be_returned():
    with pytest.raises(CaseRuleViolation, match="cannot move to returned"):
        dispatch.plan_return(case(status="resolved"), "wrong_grid", WORKER, "too late", NOW)


def test_a_dispatch_to_a_grid_hands_it_to_the_chosen_worker_with_fresh_clocks():
    waiting = case(status="returned", level="town", awaiting_dispatch=True, assignee=None,
                   dispatch={"reason": "returned", "queue": "town", "town_id": "zhangcheng", "since": NOW})
    later = NOW + timedelta(hours=5)
    target = dispatch.Target(grid=grid("G-2"), assignee={"id": "G-2-w2", "name": "王强", "role": "worker"})
    plan = dispatch.plan_dispatch(waiting, target, None, TOWN_LEAD, None, later, POLICY)
    assert plan.changes["status"] == "assigned"
    assert (plan.changes["grid_id"], plan.changes["level"], plan.changes["assignee"]["id"]) == ("G-2", "grid", "G-2-w2")
    assert plan.changes["awaiting_dispatch"] is False and plan.changes["dispatch"] is None
    assert plan.changes["sla"]["first_response"]["due_at"] == later + POLICY.first_response
    assert [event_type for event_type, _ in plan.events] == [events.CASE_STATUS_CHANGED, events.CASE_ASSIGNED]


def test_a_dispatch_to_a_department_gives_it_to_the_departments_contact():
    department = {"id": "power", "name": "县供电公司路灯所", "contact": {"id": "dept-power", "name": "郑工", "phone": "0591-24000000"}}
    plan = dispatch.plan_dispatch(case(status="returned", awaiting_dispatch=True), dispatch.Target(department=department),
                                  None, TOWN_LEAD, "请路灯所处理", NOW, POLICY)
    assert plan.changes["level"] == "department"
    assert plan.changes["department"]["id"] == "power"
    assert plan.changes["assignee"] == {"id": "dept-power", "name": "郑工", "phone": "0591-24000000", "role": "department"}
    assert plan.changes["sla"]["resolution"]["due_at"] == NOW + POLICY.resolution_escalated


def test_a_corrected_class_is_a_labelled_example_and_a_confirmed_doubtful_one_too():
    doubtful = case(classification={"subclass": "noise", "confident": False, "probability": 0.41, "model": "m1"})
    corrected = dispatch.labelled_example(doubtful, "楼上漏水", "neighbour_disputes", TOWN_LEAD, NOW)
    assert (corrected["kind"], corrected["predicted"], corrected["subclass"]) == ("corrected", "noise", "neighbour_disputes")
    assert dispatch.labelled_example(doubtful, "楼上漏水", "noise", TOWN_LEAD, NOW)["kind"] == "confirmed"
    confident = case(classification={"subclass": "noise", "confident": True, "probability": 0.97, "model": "m1"})
    assert dispatch.labelled_example(confident, "楼下跳广场舞", "noise", TOWN_LEAD, NOW) is None


def test_a_town_lead_dispatches_their_towns_queue_only():
    in_town = case(dispatch={"queue": "town", "town_id": "zhangcheng"})
    to_county = case(dispatch={"queue": "county", "town_id": "zhangcheng"})
    assert dispatch.in_queue_of(in_town, {"zhangcheng"}, everywhere=False)
    assert not dispatch.in_queue_of(in_town, {"gaishan"}, everywhere=False)
    assert not dispatch.in_queue_of(to_county, {"zhangcheng"}, everywhere=False)
    assert dispatch.in_queue_of(to_county, set(), everywhere=True)
