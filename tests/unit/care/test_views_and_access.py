"""Who reads a priority resident in full, who masked, who not at all; and what the public to-do list shows."""
from datetime import datetime, timedelta, timezone

import pytest

from services.care import access, views
from wangge.auth import Caller, Forbidden

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
GRID = {"grid_id": "G-1", "head": {"id": "h-1"}, "workers": [{"id": "w-1"}], "community_head": {"id": "lead-c"},
        "town_head": {"id": "lead-t"}, "community_id": "c-1", "town_id": "t-1"}
RESIDENT = {"_id": "CR-1", "name": "鲍金水", "phone": "13800001234", "address": "汤洋村12号", "notes": "腿脚不便", "kinds": ["living_alone"],
            "grid_id": "G-1", "next_visit_due": NOW - timedelta(days=2)}


def caller(subject, *roles):
    return Caller(subject, frozenset(roles))


@pytest.mark.parametrize("who, reason", [
    (caller("w-1", "grid_worker"), "grid_worker"),
    (caller("h-1", "grid_head"), "grid_head"),
    (caller("lead-c", "community_lead"), "community_lead"),
    (caller("lead-t", "town_lead"), "town_lead"),
    (caller("centre", "county_center"), "county_center"),
    (caller("admin", "county_admin"), "county_admin"),
    (caller("dept-civil", "department"), access.MASKED),
])
def test_the_grids_people_and_the_county_read_residents_in_full_departments_masked(who, reason):
    assert access.resident_reader(who, GRID, "G-1") == reason


@pytest.mark.parametrize("who", [
    caller("w-other", "grid_worker"), caller("h-1", "grid_worker", "community_lead"), caller("lead-x", "community_lead"),
    caller("lead-c", "town_lead"),  # heads the community, but acts as a town lead
])
def test_anyone_else_is_refused_naming_the_grid(who):
    with pytest.raises(Forbidden) as refused:
        access.resident_reader(who, GRID, "G-1")
    assert "grid_id" in refused.value.fields and "permission" not in (getattr(refused.value, "details", None) or {})


def test_a_grid_head_who_is_also_listed_as_its_worker_reads_it():
    assert access.role_in_grid(caller("h-1", "grid_worker"), {**GRID, "workers": [{"id": "h-1"}]}) == "grid_worker"


def test_departments_record_nothing_and_only_leads_act_for_a_whole_community_or_town():
    with pytest.raises(Forbidden):
        access.require_recorder(caller("dept-civil", "department"), GRID, "G-1")
    assert access.require_area_lead(caller("lead-t", "town_lead"), GRID, "community", "community_id", "c-1") == "town_lead"
    assert access.require_area_lead(caller("lead-c", "community_lead"), GRID, "community", "community_id", "c-1") == "community_lead"
    with pytest.raises(Forbidden):
        access.require_area_lead(caller("lead-c", "community_lead"), GRID, "town", "town_id", "t-1")
    with pytest.raises(Forbidden):
        access.require_area_lead(caller("w-1", "grid_worker"), GRID, "community", "community_id", "c-1")


def test_the_masked_view_keeps_the_family_name_and_the_phones_ends_and_drops_address_and_notes():
    masked = views.resident_view(RESIDENT, NOW, full=False)
    assert (masked["name"], masked["phone"], masked["address"], masked["notes"]) == ("鲍**", "138****1234", None, None)
    full = views.resident_view(RESIDENT, NOW, full=True)
    assert (full["name"], full["phone"], full["address"]) == ("鲍金水", "13800001234", "汤洋村12号")
    assert full["overdue"] and full["days_overdue"] == 2 and full["kind_names"] == ["独居老人"]


def test_a_masked_visit_keeps_its_tracking_numbers_not_what_was_said():
    visit = {"_id": "VS-1", "notes": "老人说腰疼", "needs": [{"text": "需要轮椅", "tracking_no": "YT-1", "request_id": "r"}]}
    assert views.visit_view(visit, full=False)["needs"] == [{"text": None, "tracking_no": "YT-1", "request_id": "r"}]
    assert views.visit_view(visit, full=False)["notes"] is None
    assert views.visit_view(visit, full=True) == visit


def test_the_public_to_do_item_names_no_staff_and_masks_phone_numbers():
    item = {"_id": "TD-1", "title": "南湖花园路灯改造", "area": "南门社区", "town_id": "zhangcheng", "community_id": None,
            "owner_department": "县城管局", "promised_by": "2026-12-31", "status": "in_progress", "progress_notes": "联系人 13800001234",
            "updated_at": NOW, "created_by": "lead-zhangcheng", "updated_by": "lead-zhangcheng",
            "history": [{"at": NOW, "status": "planned", "progress_notes": "", "by": "lead-zhangcheng"}]}
    shown = views.public_todo(item)
    assert "lead-zhangcheng" not in repr(shown)
    assert shown["progress_notes"] == "联系人 138****1234" and shown["status_words"] == "办理中"
    assert shown["history"][0]["status_words"] == "未开始"
