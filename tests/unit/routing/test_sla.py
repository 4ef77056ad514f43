from datetime import timedelta

import pytest

from services.routing import sla
from tests.unit.routing.factories import NOW, SLA_CONFIG, case


@pytest.mark.parametrize(
    "category, urgent, first_response, resolution",
    [
        ("street_lighting", False, timedelta(hours=2), timedelta(hours=72)),
        ("welfare", False, timedelta(hours=2), timedelta(hours=168)),
        ("street_lighting", True, timedelta(minutes=30), timedelta(hours=24)),
        ("welfare", True, timedelta(minutes=30), timedelta(hours=24)),
    ],
)
def test_policy_takes_category_then_urgent_limits(category, urgent, first_response, resolution):
    policy = sla.policy_for(SLA_CONFIG, category, urgent)
    assert (policy.first_response, policy.resolution_in_grid) == (first_response, resolution)


def test_clocks_warn_when_a_quarter_of_the_time_is_left():
    clocks = sla.start_clocks(NOW, sla.policy_for(SLA_CONFIG, "street_lighting", False))
    assert clocks["first_response"]["due_at"] == NOW + timedelta(hours=2)
    assert clocks["first_response"]["warn_at"] == NOW + timedelta(minutes=90)


@pytest.mark.parametrize(
    "after, expected",
    [
        (timedelta(minutes=89), []),
        (timedelta(minutes=90), [(sla.WARNING, sla.FIRST_RESPONSE)]),
        (timedelta(minutes=121), [(sla.BREACH, sla.FIRST_RESPONSE)]),
        (timedelta(hours=73), [(sla.BREACH, sla.FIRST_RESPONSE), (sla.BREACH, sla.RESOLUTION)]),
    ],
)
def test_due_actions_over_time(after, expected):
    assert sla.due_actions(case(), NOW + after) == expected


def test_answered_case_only_runs_the_resolution_clock():
    answered = case("acknowledged", awaiting_response=False)
    assert sla.due_actions(answered, NOW + timedelta(hours=3)) == []
    assert sla.next_check_at(answered) == answered["sla"]["resolution"]["warn_at"]


def test_finished_cases_owe_nothing():
    assert sla.due_actions(case("resolved"), NOW + timedelta(days=30)) == []
    assert sla.next_check_at(case("closed")) is None


def test_a_warned_clock_is_next_checked_at_its_deadline():
    record = case()
    record["sla"]["first_response"]["warned"] = True
    assert sla.next_check_at(record) == record["sla"]["first_response"]["due_at"]
