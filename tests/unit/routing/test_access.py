"""Role plus area decides which cases a person sees and acts on."""
import pytest

from services.routing.access import area_of, require_case_access, require_dispatch
from services.routing.registry import RegistrySnapshot
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
IN_G2 = case(grid_id="G-2")
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
    assert area_of(caller("G-1-w1", "grid_worker"), REGISTRY).case_filter() == {"grid_id": {"$in": ["G-1"]}}
    assert area_of(caller("lead-geling", "town_lead"), REGISTRY).case_filter() == {"town_id": {"$in": ["geling"]}}
    assert area_of(caller("county-center", "county_center"), REGISTRY).case_filter() is None
    assert area_of(caller("nobody", "grid_worker"), REGISTRY).case_filter() == {"_id": {"$in": []}}


def test_only_the_command_centre_dispatches():
    require_dispatch(caller("county-center", "county_center"))
    with pytest.raises(Forbidden):
        require_dispatch(caller("lead-geling", "town_lead"))
