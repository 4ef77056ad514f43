from datetime import datetime, timedelta, timezone

import pytest
from dateutil import rrule

from services.study import campaigns
from wangge.config import load_service_config

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)  # a Saturday, 10:00 in the county
COUNTY = timezone(timedelta(hours=8))
POLICY = campaigns.CampaignPolicy.from_config(load_service_config("study")["CAMPAIGNS"])  # the shipped defaults
GRIDS = {
    grid_id: {"grid_id": grid_id, "name": grid_id, "town_id": town, "community_id": community, "wechat_groups": [f"wx-{grid_id}"]}
    for grid_id, town, community in [("G-1", "geling", "fangguang"), ("G-2", "geling", "fangguang"), ("G-3", "geling", "yueshan"), ("G-4", "zhangcheng", "nanmen")]
}


@pytest.mark.parametrize(
    "target, expected",
    [
        ({"scope": "all", "ids": []}, ["G-1", "G-2", "G-3", "G-4"]),
        ({"scope": "towns", "ids": ["geling"]}, ["G-1", "G-2", "G-3"]),
        ({"scope": "communities", "ids": ["fangguang", "nanmen"]}, ["G-1", "G-2", "G-4"]),
        ({"scope": "grids", "ids": ["G-3"]}, ["G-3"]),
    ],
)
def test_targets_expand_to_grids(target, expected):
    assert [grid["grid_id"] for grid in campaigns.targeted_grids(target, GRIDS)] == expected


def test_unknown_target_ids_are_named():
    with pytest.raises(campaigns.CampaignRejected) as raised:
        campaigns.targeted_grids({"scope": "towns", "ids": ["geling", "atlantis"]}, GRIDS)
    assert "atlantis" in str(raised.value.fields)


def test_a_one_off_schedule_in_the_past_is_refused():
    with pytest.raises(campaigns.CampaignRejected) as raised:
        campaigns.first_round_at({"at": NOW - timedelta(minutes=1)}, NOW, POLICY)
    assert "at" in raised.value.fields["schedule"]


def test_a_one_off_schedule_has_one_round():
    at = NOW + timedelta(hours=1)
    assert campaigns.first_round_at({"at": at}, NOW, POLICY) == at
    assert campaigns.next_round_at({"at": at}, at, POLICY) is None


@pytest.mark.parametrize("start", [NOW.astimezone(COUNTY), NOW], ids=["given in county time", "read back from the store in UTC"])
def test_a_weekly_rule_fires_every_monday_at_nine_county_time_whatever_the_offset_of_its_start(start):
    schedule = {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", "start": start}
    first = campaigns.first_round_at(dict(schedule), NOW, POLICY)
    assert first == datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)  # 09:00 in the county
    # later rounds are computed from the schedule as the store gives it back: in UTC
    stored = {**schedule, "start": start.astimezone(timezone.utc)}
    second = campaigns.next_round_at(stored, first, POLICY)
    assert second == datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc)
    assert campaigns.next_round_at(stored, second, POLICY) == datetime(2026, 12, 14, 1, 0, tzinfo=timezone.utc)


def test_a_rule_without_hours_keeps_the_county_time_of_day_of_its_start():
    start = datetime(2026, 11, 28, 20, 30, tzinfo=COUNTY)  # 12:30 UTC
    first = campaigns.first_round_at({"rrule": "FREQ=DAILY", "start": start}, NOW, POLICY)
    assert first == start
    assert campaigns.next_round_at({"rrule": "FREQ=DAILY", "start": start.astimezone(timezone.utc)}, first, POLICY) == start + timedelta(days=1)


def test_a_rule_that_never_fires_again_is_refused():
    with pytest.raises(campaigns.CampaignRejected):
        campaigns.first_round_at({"rrule": "FREQ=DAILY;COUNT=1", "start": NOW - timedelta(days=3)}, NOW, POLICY)


def test_a_rule_that_does_not_parse_names_the_rrule():
    with pytest.raises(campaigns.CampaignRejected) as raised:
        campaigns.first_round_at({"rrule": "FREQ=FORTNIGHTLY"}, NOW, POLICY)
    assert "rrule" in raised.value.fields["schedule"]


def rejection(schedule, now=NOW):
    with pytest.raises(campaigns.CampaignRejected) as raised:
        campaigns.first_round_at(schedule, now, POLICY)
    return raised.value.fields["schedule"]


def test_a_rule_whose_parts_never_meet_is_refused_after_a_bounded_search():
    # February 30th: dateutil alone searched up to year 9999 for it
    problems = rejection({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"})
    assert "within 4 years" in problems["rrule"][0]
    assert "within 4 years" in rejection({"rrule": "FREQ=HOURLY;BYMONTH=4;BYMONTHDAY=31"})["rrule"][0]


def test_the_search_for_a_round_that_never_comes_looks_at_most_one_calendar_cycle_past_the_lookahead(monkeypatch):
    # counted, not timed: dateutil rebuilds its month tables once per month it looks at
    months_looked_at = []
    rebuild = rrule._iterinfo.rebuild
    monkeypatch.setattr(rrule._iterinfo, "rebuild", lambda info, year, month: months_looked_at.append(year) or rebuild(info, year, month))
    rejection({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"})
    assert 0 < len(months_looked_at) <= 12 * (campaigns.LOOKAHEAD_YEARS + campaigns.CALENDAR_CYCLE_YEARS + 1)


def test_a_rule_whose_next_round_lies_beyond_the_lookahead_is_refused():
    # 29 February falls on a Monday next in 2044
    assert "within 4 years" in rejection({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"})["rrule"][0]
    leap_day = campaigns.first_round_at({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=9;BYMINUTE=0"}, NOW, POLICY)
    assert leap_day == datetime(2028, 2, 29, 1, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("rule", ["FREQ=SECONDLY", "FREQ=MINUTELY;INTERVAL=90", "BYDAY=MO"])
def test_rules_repeating_more_often_than_hourly_are_refused_naming_the_minimum(rule):
    assert "HOURLY" in rejection({"rrule": rule})["rrule"][0]


@pytest.mark.parametrize("rule", ["FREQ=HOURLY;BYMINUTE=0,30", "FREQ=DAILY;BYHOUR=23,0;BYMINUTE=0,59"])
def test_rounds_closer_than_the_minimum_gap_are_refused(rule):
    problem = rejection({"rrule": rule})["rrule"][0]
    assert "at least 1 hour apart" in problem


def test_the_next_round_keeps_the_minimum_gap_even_if_the_rule_had_a_closer_one():
    schedule = {"rrule": "FREQ=HOURLY;BYMINUTE=0,30", "start": NOW}  # as an earlier release stored it
    assert campaigns.next_round_at(schedule, NOW, POLICY) == NOW + timedelta(hours=1)


@pytest.mark.parametrize("rule, problem", [
    ("FREQ=DAILY;UNTIL=20270101T000000Z", "schedule.until"),
    ("FREQ=DAILY;BYSECOND=0", "BYSECOND"),
    ("DTSTART:20200101T000000\nRRULE:FREQ=DAILY", "DTSTART"),
])
def test_rule_parts_that_would_bypass_the_checks_are_refused(rule, problem):
    assert problem in rejection({"rrule": rule})["rrule"][0]


def test_a_start_far_from_now_is_refused_naming_the_start():
    assert "start" in rejection({"rrule": "FREQ=DAILY", "start": NOW - timedelta(days=800)})


def test_reminders_sooner_than_the_minimum_after_their_round_are_refused_naming_the_field():
    with pytest.raises(campaigns.CampaignRejected) as raised:
        campaigns.check_reminder({"after_hours": 0.0001, "max": 2}, POLICY)
    assert raised.value.fields == {"reminder": {"after_hours": ["Must be at least 1: reminders go at least 1 hour after their round."]}}
    campaigns.check_reminder({"after_hours": 1, "max": 2}, POLICY)


def test_a_round_fans_out_once_per_grid_with_its_reminders():
    campaign = {"_id": "CP-1", "grids": {"G-2": {}, "G-1": {}}, "reminder": {"after_hours": 24, "max": 2}}
    dispatches = campaigns.round_dispatches(campaign, NOW)
    assert [(d["grid_id"], d["kind"], d["number"], d["due_at"] - NOW) for d in dispatches] == [
        ("G-1", "campaign_due", 0, timedelta(0)), ("G-1", "reminder", 1, timedelta(hours=24)), ("G-1", "reminder", 2, timedelta(hours=48)),
        ("G-2", "campaign_due", 0, timedelta(0)), ("G-2", "reminder", 1, timedelta(hours=24)), ("G-2", "reminder", 2, timedelta(hours=48)),
    ]
    assert [d["final"] for d in dispatches if d["kind"] == "reminder"] == [False, True, False, True]
    assert campaigns.round_dispatches(campaign, NOW)[0]["_id"] == dispatches[0]["_id"]  # the same round, the same ids


@pytest.mark.parametrize(
    "level, expected",
    [
        ("grid", [0.5, 0.0, 1.0]),
        ("community", [0.25, 1.0]),
        ("town", [0.4]),
        ("campaign", [0.4]),
    ],
)
def test_rates_roll_up_from_grids(level, expected):
    rows = [
        {"grid_id": "G-1", "community_id": "fangguang", "town_id": "geling", "members": 2, "participants": 1},
        {"grid_id": "G-2", "community_id": "fangguang", "town_id": "geling", "members": 2, "participants": 0},
        {"grid_id": "G-3", "community_id": "yueshan", "town_id": "geling", "members": 1, "participants": 1},
    ]
    assert [row["rate"] for row in campaigns.rollup(rows, level)] == expected


def test_a_grid_without_members_has_no_rate_rather_than_zero():
    assert campaigns.rollup([{"grid_id": "G", "members": 0, "participants": 0}], "grid")[0]["rate"] is None
