from datetime import datetime, timedelta, timezone

import pytest

from services.study import campaigns

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
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
        campaigns.first_round_at({"at": NOW - timedelta(minutes=1)}, NOW)
    assert "at" in raised.value.fields["schedule"]


def test_a_one_off_schedule_has_one_round():
    at = NOW + timedelta(hours=1)
    assert campaigns.first_round_at({"at": at}, NOW) == at
    assert campaigns.next_round_at({"at": at}, at) is None


def test_a_weekly_rule_fires_every_monday_at_nine_county_time():
    schedule = {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=1;BYMINUTE=0;BYSECOND=0", "start": NOW}  # 09:00 in the county is 01:00 UTC
    first = campaigns.first_round_at(dict(schedule), NOW)
    assert first == datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)
    assert campaigns.next_round_at(schedule, first) == first + timedelta(days=7)


def test_a_rule_that_never_fires_again_is_refused():
    with pytest.raises(campaigns.CampaignRejected):
        campaigns.first_round_at({"rrule": "FREQ=DAILY;COUNT=1", "start": NOW - timedelta(days=3)}, NOW)


def test_a_rule_that_does_not_parse_names_the_rrule():
    with pytest.raises(campaigns.CampaignRejected) as raised:
        campaigns.first_round_at({"rrule": "FREQ=FORTNIGHTLY"}, NOW)
    assert "rrule" in raised.value.fields["schedule"]


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
