import pytest

from services.routing.assign import choose_assignee
from services.routing.locate import BY_BUILDING, BY_GRID_ID, BY_POINT, BY_WECHAT_GROUP, TRIAGE, GridIndex
from services.routing.registry import RegistrySnapshot
from tests.unit.routing.factories import grid

# Two grids side by side: G-1 west of lon 118.91, G-2 east of it.
INDEX = GridIndex(
    [grid("G-1", 118.90, 25.80, buildings=["南湖花园", "南湖花园二区"]), grid("G-2", 118.91, 25.80, buildings=["悦山小区3号楼"])],
    towns=[{"id": "zhangcheng", "name": "樟城镇"}, {"id": "geling", "name": "葛岭镇"}],
)


@pytest.mark.parametrize(
    "request_fields, method, grid_id",
    [
        ({"grid_id": "G-2", "wechat_group_id": "wx-g-1"}, BY_GRID_ID, "G-2"),
        ({"grid_id": "nope", "wechat_group_id": "wx-g-1"}, BY_WECHAT_GROUP, "G-1"),
        ({"address": "葛岭镇方广社区悦山小区3号楼402", "location": {"lon": 118.905, "lat": 25.805}}, BY_BUILDING, "G-2"),
        ({"address": "南门社区南湖花园二区路口"}, BY_BUILDING, "G-1"),
        ({"location": {"lon": 118.915, "lat": 25.805}}, BY_POINT, "G-2"),
        ({"location": {"lon": 118.91, "lat": 25.805}}, BY_POINT, "G-1"),  # on the shared edge: the smaller id
        ({"location": {"lon": 120.0, "lat": 26.0}}, TRIAGE, None),
        ({}, TRIAGE, None),
    ],
)
def test_locate_tries_each_way_in_order(request_fields, method, grid_id):
    location = INDEX.locate(request_fields)
    assert (location.method, location.grid_id) == (method, grid_id)


def test_triage_keeps_the_town_named_in_the_address():
    location = INDEX.locate({"address": "葛岭镇某村路口"})
    assert (location.method, location.town_id) == (TRIAGE, "geling")


def test_located_case_carries_its_town():
    assert INDEX.locate({"grid_id": "G-1"}).town_id == "zhangcheng"


def counted(open_cases, asked=None):
    """A stand-in for the store's count of open cases, noting whom it was asked about."""
    def open_cases_of(worker_ids):
        if asked is not None:
            asked.append(list(worker_ids))
        return {worker_id: open_cases[worker_id] for worker_id in worker_ids if worker_id in open_cases}
    return open_cases_of


def test_on_duty_worker_with_fewest_open_cases_takes_it():
    assert choose_assignee(grid(), counted({"G-1-w1": 3, "G-1-w2": 1}))["id"] == "G-1-w2"


def test_ties_go_to_the_first_worker_listed():
    assert choose_assignee(grid(), counted({}))["id"] == "G-1-w1"


def test_workers_off_duty_are_skipped_and_one_on_duty_takes_it_without_counting():
    record = grid()
    record["workers"][1]["on_duty"] = False
    asked = []
    assert choose_assignee(record, counted({"G-1-w1": 9}, asked))["id"] == "G-1-w1"
    assert asked == []
    both = []
    choose_assignee(grid(), counted({}, both))
    assert both == [["G-1-w1", "G-1-w2"]]


def test_no_one_on_duty_falls_back_to_the_grid_head():
    record = grid(workers=[{"id": "x", "name": "x", "on_duty": False}])
    chosen = choose_assignee(record, counted({}))
    assert (chosen["id"], chosen["role"]) == ("G-1-head", "grid_head")


def test_a_request_naming_a_grid_or_group_the_edition_lacks_says_the_snapshot_may_be_stale():
    snapshot = RegistrySnapshot(1, towns=[], communities=[], grids=[grid("G-1")], departments=[])
    assert not snapshot.names_unknown_place({"grid_id": "G-1", "wechat_group_id": "wx-g-1"})
    assert not snapshot.names_unknown_place({"text": "路灯坏了"})
    assert snapshot.names_unknown_place({"grid_id": "G-2"})
    assert snapshot.names_unknown_place({"wechat_group_id": "wx-elsewhere"})
