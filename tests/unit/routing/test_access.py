"""Role plus area decides which cases a person sees and acts on."""
import pytest

from services.routing import views
from services.routing.access import (
    area_of, reporter_reader, require_assignment, require_case_access, require_dispatch, require_worker_access,
)
from services.routing.registry import RegistrySnapshot
from services.routing.storage import all_of
from tests.unit.routing.factories import case, grid
from wangge.auth import Caller, Forbidden

TOWNS = [{"id": "zhangcheng", "name": "樟城镇", "head": {"id": "lead-zhangcheng", "name": "樟城镇网格办"}},
         {"id": "geling", "name": "葛岭镇", "head": {"id": "lead-geling", "name": "葛岭镇网格办"}}]
COMMUNITIES = [{"id": "zc-nanmen", "name": "南门社区", "town_id": "zhangcheng", "head": {"id": "lead-zc-nanmen", "name": "南门社区网格站"}},
               {"id": "gl-shang", "name": "上村", "town_id": "geling", "head": None}]
DEPARTMENTS = [{"id": "power", "name": "县供电公司路灯所", "categories": ["street_lighting"], "contact": {"id": "dept-power", "name": "值班员"}}]
REGISTRY = RegistrySnapshot(1, TOWNS, COMMUNITIES, [
    grid("G-1"), grid("G-2", lon=118.92), grid("G-9", lon=118.5, town_id="geling", community_id="gl-shang"),
], DEPARTMENTS)

IN_G1 = case(grid_id="G-1")
IN_G2 = case(grid_id="G-2", assignee={"id": "G-2-w1", "name": "王强", "role": "worker"})
IN_GELING = case(grid_id="G-9", town_id="geling", community_id="gl-shang")
AT_POWER = case(grid_id="G-9", town_id="geling", community_id="gl-shang", level="department", department={"id": "power", "name": "路灯所"})
TRIAGE_IN_GELING = case(grid_id=None, community_id=None, town_id="geling", triage=True)


def caller(subject, *roles):
    return Caller(subject=subject, roles=frozenset(roles))


@pytest.mark.parametrize("who, visible", [
    (caller("G-1-w1", "grid_worker"), [IN_G1]),
    (caller("G-1-head", "grid_head"), [IN_G1]),
    (caller("lead-zc-nanmen", "community_lead"), [IN_G1, IN_G2]),
    (caller("lead-geling", "town_lead"), [IN_GELING, AT_POWER, TRIAGE_IN_GELING]),
    (caller("dept-power", "department"), [AT_POWER]),
    (caller("county-center", "county_center"), [IN_G1, IN_G2, IN_GELING, AT_POWER, TRIAGE_IN_GELING]),
    (caller("county-admin", "county_admin"), [IN_G1, IN_G2, IN_GELING, AT_POWER, TRIAGE_IN_GELING]),
    # a role without the registry naming the person gives nothing
    (caller("someone-else", "grid_worker", "town_lead", "department"), []),
    (caller("G-1-w1", "study_editor"), []),
])
def test_each_role_sees_the_cases_of_its_area(who, visible):
    area = area_of(who, REGISTRY)
    everything = [IN_G1, IN_G2, IN_GELING, AT_POWER, TRIAGE_IN_GELING]
    assert [c for c in everything if area.covers(c)] == visible


def test_a_worker_acting_on_another_grids_case_is_refused():
    with pytest.raises(Forbidden):
        require_case_access(caller("G-1-w1", "grid_worker"), REGISTRY, IN_G2)
    require_case_access(caller("G-1-w1", "grid_worker"), REGISTRY, IN_G1)


def test_the_store_filter_matches_the_area():
    # one id an equality: an $in leading a filter is a scan of every case on SecantusDB
    assert area_of(caller("G-1-w1", "grid_worker"), REGISTRY).case_filter() == {"grid_id": "G-1"}
    assert area_of(caller("lead-geling", "town_lead"), REGISTRY).case_filter() == {"town_id": "geling"}
    assert area_of(caller("county-center", "county_center"), REGISTRY).case_filter() is None
    assert area_of(caller("nobody", "grid_worker"), REGISTRY).case_filter() == {"_id": {"$in": []}}


def test_only_the_command_centre_dispatches():
    require_dispatch(caller("county-center", "county_center"))
    with pytest.raises(Forbidden):
        require_dispatch(caller("lead-geling", "town_lead"))


@pytest.mark.parametrize("who, role", [
    (caller("G-1-w1", "grid_worker"), "grid_worker"),
    (caller("G-1-head", "grid_head"), "grid_head"),
    (caller("lead-zc-nanmen", "community_lead"), "community_lead"),
    (caller("lead-zhangcheng", "town_lead"), "town_lead"),
    (caller("county-admin", "county_admin"), "county_admin"),
])
def test_a_person_acts_on_a_case_in_the_role_that_reaches_it(who, role):
    assert require_case_access(who, REGISTRY, IN_G1) == role


def test_a_grid_head_reassigns_within_their_grid_and_only_the_command_centre_across_grids():
    require_assignment(caller("G-1-head", "grid_head"), REGISTRY, IN_G1, "G-1")
    require_assignment(caller("lead-zc-nanmen", "community_lead"), REGISTRY, IN_G1, "G-1")
    require_assignment(caller("county-center", "county_center"), REGISTRY, IN_G1, "G-2")
    for who, grid_id in [(caller("G-1-head", "grid_head"), "G-2"), (caller("G-1-w1", "grid_worker"), "G-1"),
                         (caller("G-2-head", "grid_head"), "G-1"), (caller("dept-power", "department"), "G-9")]:
        with pytest.raises(Forbidden):
            require_assignment(who, REGISTRY, IN_G1, grid_id)


def test_a_workers_cases_are_for_the_worker_and_their_leads():
    for who in [caller("G-1-w2", "grid_worker"), caller("G-1-head", "grid_head"), caller("lead-zc-nanmen", "community_lead"),
                caller("lead-zhangcheng", "town_lead"), caller("county-center", "county_center")]:
        require_worker_access(who, REGISTRY, "G-1-w2")
    for who in [caller("G-1-w1", "grid_worker"), caller("G-2-head", "grid_head"), caller("lead-geling", "town_lead"),
                caller("dept-power", "department")]:
        with pytest.raises(Forbidden):
            require_worker_access(who, REGISTRY, "G-1-w2")


@pytest.mark.parametrize("who, reader", [
    (caller("G-1-w1", "grid_worker"), "assignee"),
    (caller("G-1-w2", "grid_worker"), None),  # a colleague in the grid, not the assignee
    (caller("G-1-head", "grid_head"), "grid_head"),
    (caller("lead-zc-nanmen", "community_lead"), "community_lead"),
    (caller("lead-zhangcheng", "town_lead"), "town_lead"),
    (caller("county-center", "county_center"), "county_center"),
])
def test_the_resident_is_for_the_assignee_and_their_leads(who, reader):
    assert reporter_reader(who, require_case_access(who, REGISTRY, IN_G1), IN_G1) == reader


def test_a_department_reads_the_resident_only_once_the_case_is_theirs():
    department = caller("dept-power", "department")
    assert reporter_reader(department, "department", AT_POWER) is None
    assigned = {**AT_POWER, "assignee": {"id": "dept-power", "name": "值班员"}}
    assert reporter_reader(department, "department", assigned) == "assignee"


def test_a_case_view_masks_the_resident_for_readers_without_a_reason():
    record = case(text="路灯坏了，请回电13912345678", reporters=[
        {"tracking_no": "YT-20261128-000001", "reporter": {"name": "林先生", "phone": "13800000009"}}])
    masked = views.case_detail(record, None)
    assert masked["reporters"][0] | {"at": None} == {"tracking_no": "YT-20261128-000001", "name": "林**", "phone": "138****0009", "at": None}
    assert masked["text"] == "路灯坏了，请回电139****5678"
    full = views.case_detail(record, "assignee")
    assert (full["reporters"][0]["name"], full["reporters"][0]["phone"]) == ("林先生", "13800000009")
    assert full["text"] == record["text"]
    assert views.case_listed(record)["text"] == "路灯坏了，请回电139****5678"


def test_grid_workers_phones_are_for_staff():
    record = grid("G-1")
    assert views.grid_detail(record, staff=True) == record
    shown = views.grid_detail(record, staff=False)
    assert {shown["head"]["phone"], *(w["phone"] for w in shown["workers"])} == {"138****0000", "138****0001", "138****0002"}


def test_filters_on_different_fields_are_one_document_and_only_the_same_field_needs_and():
    open_cases = {"status": {"$in": ["assigned"]}}
    assert all_of(open_cases, {"town_id": "geling"}) == {"status": {"$in": ["assigned"]}, "town_id": "geling"}
    assert all_of(open_cases, None) == open_cases and all_of({}, {"town_id": "geling"}) == {"town_id": "geling"}
    overdue = {"$or": [{"awaiting_response": True}, {"sla.resolution.due_at": {"$lte": 1}}]}
    two_roles = {"$or": [{"grid_id": "G-1"}, {"town_id": "geling"}]}
    assert all_of(overdue, two_roles) == {"$and": [overdue, two_roles]}
    assert all_of({"town_id": "zhangcheng"}, {"town_id": "geling"}) == {"$and": [{"town_id": "zhangcheng"}, {"town_id": "geling"}]}
