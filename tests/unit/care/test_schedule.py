"""Visit intervals, due times, overdue and who hears: plain logic, no store or broker."""
from datetime import date, datetime, timedelta, timezone

import pytest

from services.care import schedule
from wangge.config import load_service_config

POLICY = schedule.VisitPolicy.from_config(load_service_config("care")["VISITS"])
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)


def resident(**overrides):
    return {"_id": "CR-1", "name": "鲍金水", "grid_id": "G-1", "community_id": "c-1", "town_id": "t-1", "kinds": ["empty_nest"],
            "next_visit_due": NOW + timedelta(days=1), **overrides}


def test_every_kind_has_an_interval_and_people_living_alone_are_visited_weekly():
    assert set(POLICY.interval_days) == set(schedule.KINDS)
    assert POLICY.interval(["living_alone"]) == timedelta(days=7)
    assert POLICY.interval(["empty_nest"]) == timedelta(days=30)


def test_someone_of_several_kinds_is_visited_as_often_as_the_most_frequent_asks():
    assert POLICY.interval(["disabled", "living_alone", "subsistence"]) == timedelta(days=7)
    assert POLICY.next_due(["empty_nest", "living_alone"], NOW) == NOW + timedelta(days=7)


def test_intervals_come_from_the_config_and_a_missing_or_empty_one_is_refused():
    settings = load_service_config("care")["VISITS"]
    assert schedule.VisitPolicy.from_config({**settings, "INTERVAL_DAYS": {**settings["INTERVAL_DAYS"], "living_alone": 3}}).interval(
        ["living_alone"]) == timedelta(days=3)
    with pytest.raises(ValueError, match="seriously_ill"):
        schedule.VisitPolicy.from_config({**settings, "INTERVAL_DAYS": {k: v for k, v in settings["INTERVAL_DAYS"].items() if k != "seriously_ill"}})
    with pytest.raises(ValueError, match="positive"):
        schedule.VisitPolicy.from_config({**settings, "INTERVAL_DAYS": {**settings["INTERVAL_DAYS"], "disabled": 0}})


def test_a_resident_is_overdue_only_once_their_due_time_has_passed():
    assert not schedule.is_overdue(resident(), NOW)
    due_today = resident(next_visit_due=NOW - timedelta(hours=3))
    assert schedule.is_overdue(due_today, NOW) and schedule.days_overdue(due_today, NOW) == 0
    assert schedule.days_overdue(resident(next_visit_due=NOW - timedelta(days=9, hours=1)), NOW) == 9
    assert schedule.days_overdue(resident(), NOW) == 0


def test_a_due_time_has_a_worker_notice_at_it_and_a_grid_head_notice_after_the_grace():
    due_at = NOW - timedelta(days=1)
    worker, head = schedule.notices(resident(), due_at, POLICY)
    assert (worker["stage"], worker["notify_at"]) == ("worker", due_at)
    assert (head["stage"], head["notify_at"]) == ("grid_head", due_at + timedelta(days=3))
    # the same (resident, due time, stage) always has the same id: published once however many processes
    assert [n["_id"] for n in schedule.notices(resident(), due_at, POLICY)] == [worker["_id"], head["_id"]]
    assert len({worker["_id"], head["_id"], schedule.notices(resident(), NOW, POLICY)[0]["_id"]}) == 3


def test_a_visit_is_on_time_when_made_by_its_due_time():
    due_at = NOW
    assert schedule.on_time({"due_at": due_at, "done_at": due_at - timedelta(days=2)})
    assert schedule.on_time({"due_at": due_at, "done_at": due_at})
    assert not schedule.on_time({"due_at": due_at, "done_at": due_at + timedelta(minutes=1)})
    assert not schedule.on_time({"due_at": due_at, "done_at": None})


def test_a_period_is_whole_days_on_the_countys_clock():
    start, end = POLICY.period(date(2026, 11, 1), date(2026, 11, 30))
    assert start == datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc)
    assert end == datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)


def test_a_new_resident_goes_to_the_on_duty_worker_with_the_fewest_residents():
    grid = {"workers": [{"id": "w-1", "on_duty": True}, {"id": "w-2", "on_duty": False}, {"id": "w-3", "on_duty": True}]}
    assert schedule.responsible_worker(grid, {}) == "w-1"
    assert schedule.responsible_worker(grid, {"w-1": 4, "w-3": 2}) == "w-3"
    assert schedule.responsible_worker({"workers": [{"id": "w-2", "on_duty": False}]}, {}) == "w-2"
    assert schedule.responsible_worker({"workers": []}, {}) is None


def test_notices_name_the_residents_own_worker_while_they_are_in_the_grid_and_no_phones():
    grid = {"head": {"id": "h-1", "name": "李志", "phone": "138****0004"},
            "workers": [{"id": "w-1", "name": "余雪华", "phone": "138****0005", "on_duty": True}, {"id": "w-2", "name": "余玉", "on_duty": False}]}
    assert schedule.notice_recipients(grid, "w-2") == ({"id": "w-2", "name": "余玉"}, {"id": "h-1", "name": "李志"})
    assert schedule.notice_recipients(grid, "w-gone") == ({"id": "w-1", "name": "余雪华"}, {"id": "h-1", "name": "李志"})
    assert schedule.notice_recipients(None, "w-1") == (None, None)
