"""The county map's grids and counts, the caller's own grids and the departments, by role."""
from datetime import timedelta

import pytest

from services.routing import grid_map, schemas, views
from services.routing.access import area_of, grids_of_caller
from services.routing.registry import RegistrySnapshot
from tests.unit.routing.factories import NOW, case, grid
from tests.unit.routing.test_access import COMMUNITIES, DEPARTMENTS, TOWNS, caller

G1 = grid("G-1")
G2 = grid("G-2", lon=118.92, head={"id": "G-1-head", "name": "张水如"},
          workers=[{"id": "G-1-w1", "name": "李梅", "on_duty": False}])
G3 = grid("G-3", lon=118.94, area=None, centroid=None)
G9 = grid("G-9", lon=118.5, town_id="geling", community_id="gl-shang", town_name="葛岭镇", community_name="上村")
REGISTRY = RegistrySnapshot(7, TOWNS, COMMUNITIES, [G1, G2, G3, G9], DEPARTMENTS)


def shown(who, open_counts=None):
    area = area_of(who, REGISTRY)
    return [g["id"] for g in grid_map.grids_on_map(area, REGISTRY.index.grids.values(), open_counts or {})]


@pytest.mark.parametrize("who, grid_ids", [
    (caller("county-center", "county_center"), ["G-1", "G-2", "G-3", "G-9"]),
    (caller("lead-geling", "town_lead"), ["G-9"]),
    (caller("lead-zc-nanmen", "community_lead"), ["G-1", "G-2", "G-3"]),
    (caller("G-1-w1", "grid_worker"), ["G-1", "G-2"]),
    (caller("G-1-head", "grid_head"), ["G-1", "G-2"]),
    (caller("dept-power", "department"), []),
    (caller("someone", "grid_worker"), []),
])
def test_the_map_shows_the_grids_of_the_callers_area(who, grid_ids):
    assert shown(who) == grid_ids


def test_a_department_sees_the_grids_where_its_cases_lie():
    assert shown(caller("dept-power", "department"), {"G-9": 1}) == ["G-9"]


def test_each_grid_is_a_feature_with_its_area_and_counts_and_one_without_an_area_has_no_geometry():
    collection = grid_map.feature_collection(7, [G1, G3], {"G-1": 3, "G-3": 1}, {"G-1": 2}, {}, {})
    dumped = schemas.GridMapSchema().dump(collection)
    assert (dumped["type"], dumped["version"]) == ("FeatureCollection", 7)
    first, second = dumped["features"]
    assert (first["type"], first["id"], first["geometry"]) == ("Feature", "G-1", G1["area"])
    assert first["properties"] == {
        "grid_id": "G-1", "name": "G-1网格", "town_id": "zhangcheng", "town": "樟城镇", "community_id": "zc-nanmen",
        "community": "南门社区", "centroid": None, "open": 3, "overdue": 2}
    assert (second["geometry"], second["properties"]["open"], second["properties"]["overdue"]) == (None, 1, 0)


def test_a_towns_cases_in_no_grid_are_counted_for_the_town():
    collection = grid_map.feature_collection(7, [G1], {"G-1": 3}, {"G-1": 2}, {"zhangcheng": 2, "geling": 1}, {"zhangcheng": 1})
    assert schemas.GridMapSchema().dump(collection)["unplaced_by_town"] == [
        {"town_id": "geling", "open": 1, "overdue": 0}, {"town_id": "zhangcheng", "open": 2, "overdue": 1}]


def test_a_grid_head_heads_their_grid_and_works_in_another():
    mine = grids_of_caller(caller("G-1-head", "grid_head"), REGISTRY)
    assert sorted((g["id"], role) for g, role in mine) == [("G-1", "grid_head"), ("G-2", "grid_head")]
    worker = sorted((g["id"], role) for g, role in grids_of_caller(caller("G-1-w1", "grid_worker"), REGISTRY))
    assert worker == [("G-1", "grid_worker"), ("G-2", "grid_worker")]


def test_a_head_without_the_grid_head_role_is_only_a_worker_and_other_roles_have_no_grids():
    assert [role for _, role in grids_of_caller(caller("G-1-head", "grid_worker"), REGISTRY)] == ["grid_worker", "grid_worker"]
    assert grids_of_caller(caller("G-1-head", "town_lead"), REGISTRY) == []


def test_my_grid_says_a_workers_duty_and_none_for_the_head():
    as_worker = schemas.MyGridSchema().dump(views.my_grid(G2, "grid_worker", "G-1-w1"))
    assert (as_worker["grid_id"], as_worker["role"], as_worker["on_duty"]) == ("G-2", "grid_worker", False)
    assert "workers" not in as_worker and "area" not in as_worker
    assert schemas.MyGridSchema().dump(views.my_grid(G1, "grid_head", "G-1-head"))["on_duty"] is None


def test_departments_are_listed_with_their_contacts_name_only():
    listed = schemas.DepartmentListSchema().dump({"version": 7, "items": list(REGISTRY.departments.values())})
    assert listed["items"] == [{"department_id": "power", "name": "县供电公司路灯所", "categories": ["street_lighting"],
                                "contact": {"id": "dept-power", "name": "值班员"}}]


# -- the counts, over a real store -------------------------------------------------------

def overdue_case(case_id, **overrides):
    """A case whose resolution deadline passed an hour ago."""
    late = case(_id=case_id, **overrides)
    late["sla"]["resolution"]["due_at"] = NOW - timedelta(hours=1)
    return late


def test_the_counts_are_the_callers_open_cases_and_of_those_the_overdue_ones_by_grid(store):
    store.insert_case(case(_id="open-g1"))
    store.insert_case(overdue_case("late-g1"))
    store.insert_case(case(_id="closed-g1", status="closed"))
    store.insert_case(overdue_case("late-closed-g1", status="closed"))
    store.insert_case(case(_id="no-answer-g2", grid_id="G-2", sla={**case()["sla"], "first_response": {"due_at": NOW - timedelta(minutes=1)}}))
    store.insert_case(case(_id="answered-g2", grid_id="G-2", awaiting_response=False,
                           sla={**case()["sla"], "first_response": {"due_at": NOW - timedelta(minutes=1)}}))
    store.insert_case(overdue_case("late-geling", grid_id="G-9", town_id="geling", community_id="gl-shang"))
    store.insert_case(case(_id="triage", grid_id=None))

    everywhere = area_of(caller("county-center", "county_center"), REGISTRY)
    assert store.count_cases_by_grid(grid_map.open_case_filter(everywhere)) == {"G-1": 2, "G-2": 2, "G-9": 1}
    assert store.count_cases_by_grid(grid_map.overdue_case_filter(everywhere, NOW)) == {"G-1": 1, "G-2": 1, "G-9": 1}

    town = area_of(caller("lead-geling", "town_lead"), REGISTRY)
    assert store.count_cases_by_grid(grid_map.open_case_filter(town)) == {"G-9": 1}
    nobody = area_of(caller("someone", "grid_worker"), REGISTRY)
    assert store.count_cases_by_grid(grid_map.open_case_filter(nobody)) == {}


def test_cases_in_a_town_but_no_grid_are_counted_for_their_town_within_the_callers_area(store):
    store.insert_case(case(_id="open-g1"))
    store.insert_case(case(_id="unplaced-zc", grid_id=None))
    store.insert_case(overdue_case("late-unplaced-zc", grid_id=None))
    store.insert_case(case(_id="closed-unplaced-zc", grid_id=None, status="closed"))
    store.insert_case(case(_id="unplaced-gl", grid_id=None, town_id="geling", community_id=None))
    store.insert_case(case(_id="nowhere", grid_id=None, town_id=None, community_id=None))

    def unplaced(who, overdue=False):
        area = area_of(who, REGISTRY)
        query = grid_map.overdue_case_filter(area, NOW) if overdue else grid_map.open_case_filter(area)
        return store.count_cases_by_town(grid_map.unplaced(query))

    everywhere = caller("county-center", "county_center")
    assert unplaced(everywhere) == {"zhangcheng": 2, "geling": 1}
    assert unplaced(everywhere, overdue=True) == {"zhangcheng": 1}
    assert unplaced(caller("lead-geling", "town_lead")) == {"geling": 1}
    assert unplaced(caller("G-1-w1", "grid_worker")) == {}


def test_counts_follow_the_clock(store):
    store.insert_case(case(_id="due-soon"))
    everywhere = area_of(caller("county-center", "county_center"), REGISTRY)
    resolution_due = case()["sla"]["resolution"]["due_at"]
    assert store.count_cases_by_grid(grid_map.overdue_case_filter(everywhere, NOW)) == {}
    assert store.count_cases_by_grid(grid_map.overdue_case_filter(everywhere, resolution_due + timedelta(seconds=1))) == {"G-1": 1}
