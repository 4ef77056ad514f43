import pytest

from services.routing.lifecycle import (
    TRANSITIONS, Actor, CaseRuleViolation, Move, check_step, check_transition, next_level, plan_move,
)
from wangge import events
from tests.unit.routing.factories import NOW, case

W1 = Actor("w1", "grid_worker")
D1 = Actor("d-1", "department")

LEGAL = [
    ("received", "assigned"), ("assigned", "acknowledged"), ("acknowledged", "in_progress"),
    ("in_progress", "resolved"), ("resolved", "closed"), ("resolved", "reopened"), ("closed", "reopened"),
    ("assigned", "escalated"), ("escalated", "escalated"), ("reopened", "in_progress"),
    ("acknowledged", "rejected"),
]
ILLEGAL = [
    ("received", "resolved"), ("assigned", "closed"), ("in_progress", "acknowledged"), ("closed", "in_progress"),
    ("merged", "assigned"), ("rejected", "reopened"), ("resolved", "in_progress"), ("in_progress", "rejected"),
    ("received", "merged"),  # only the duplicate check merges, linking the reporter
]


@pytest.mark.parametrize("current, target", LEGAL)
def test_legal_transitions_pass(current, target):
    check_transition(current, target)


@pytest.mark.parametrize("current, target", ILLEGAL)
def test_illegal_transitions_name_the_current_state(current, target):
    with pytest.raises(CaseRuleViolation) as raised:
        check_transition(current, target)
    assert raised.value.details == {"current_status": current}
    assert current in str(raised.value)


def test_levels_climb_grid_community_town_department_and_stop():
    assert [next_level(level) for level in ("grid", "community", "town")] == ["community", "town", "department"]
    with pytest.raises(CaseRuleViolation):
        next_level("department")


def test_first_response_is_stamped_once():
    changes, entry = plan_move(case("assigned"), Move("acknowledged", W1, "马上去看"), NOW)
    assert changes["first_response_at"] == NOW
    assert entry == {"kind": "status", "from": "assigned", "to": "acknowledged", "at": NOW, "by": "w1", "role": "grid_worker", "note": "马上去看"}
    changes, _ = plan_move(case("acknowledged", first_response_at=NOW), Move("in_progress", W1), NOW)
    assert "first_response_at" not in changes


def test_rejection_needs_a_reason():
    with pytest.raises(CaseRuleViolation, match="reason"):
        plan_move(case("assigned"), Move("rejected", W1, " "), NOW)


def test_department_case_is_resolved_only_after_evaluation():
    steps = [{"step": s} for s in ("collect", "survey", "coordinate", "contact_departments")]
    with pytest.raises(CaseRuleViolation, match="evaluation"):
        plan_move(case("in_progress", level="department", five_steps=steps), Move("resolved", D1), NOW)
    plan_move(case("in_progress", level="department", five_steps=steps + [{"step": "evaluate"}]), Move("resolved", D1), NOW)


def test_every_status_of_the_contract_has_its_transitions():
    assert set(TRANSITIONS) == set(events.CASE_STATUSES)


def test_grid_case_closes_without_the_five_steps():
    changes, _ = plan_move(case("resolved"), Move("closed", Actor("resident", "resident")), NOW)
    assert changes["closed_at"] == NOW


@pytest.mark.parametrize(
    "done, step, allowed",
    [([], "collect", True), ([], "survey", False), (["collect"], "survey", True),
     (["collect", "survey"], "contact_departments", False), (["collect", "survey", "coordinate", "contact_departments"], "evaluate", True)],
)
def test_five_steps_go_in_order(done, step, allowed):
    record = case("in_progress", five_steps=[{"step": s} for s in done])
    if allowed:
        check_step(record, step)
    else:
        with pytest.raises(CaseRuleViolation):
            check_step(record, step)
