import json
import re

import pytest
from shapely import STRtree, box
from shapely.geometry import shape

from devstack import demo_county
from devstack.demo import DEMO_REQUESTS
from devstack.demo_county import build_county
from services.routing.registry_schema import RegistrySchema

MOBILE = re.compile(r"^1[3-9]\d{9}$")


@pytest.fixture(scope="module")
def county():
    return build_county()


def all_grids(county):
    return [
        (town, community, grid)
        for town in county["towns"]
        for community in town["communities"]
        for grid in community["grids"]
    ]


def grid_where(county, town_name, community_name, building):
    return [
        grid for town, community, grid in all_grids(county)
        if town["name"] == town_name and community["name"] == community_name and building in grid["buildings"]
    ]


def test_loads_with_the_registry_schema(county):
    RegistrySchema().load(county)


def test_has_the_21_towns_of_yongtai(county):
    names = {town["name"] for town in county["towns"]}
    assert len(county["towns"]) == 21
    assert {"樟城镇", "城峰镇", "葛岭镇", "洑口乡", "塘前乡"} <= names


def test_has_exactly_1429_grids(county):
    assert len(all_grids(county)) == 1429


def test_ids_are_unique_across_the_file(county):
    ids = [county["county"]["id"]]
    for town in county["towns"]:
        ids.append(town["id"])
        for community in town["communities"]:
            ids.append(community["id"])
            for grid in community["grids"]:
                ids += [grid["id"], grid["head"]["id"], *grid["wechat_groups"]]
                ids += [worker["id"] for worker in grid["workers"]]
    ids += [department["id"] for department in county["departments"]]
    ids += [department["contact"]["id"] for department in county["departments"]]
    assert len(ids) == len(set(ids))


def test_building_names_are_unique(county):
    buildings = [building for _, _, grid in all_grids(county) for building in grid["buildings"]]
    assert len(buildings) == len(set(buildings))


def test_communities_have_3_to_12_grids(county):
    sizes = [len(community["grids"]) for town in county["towns"] for community in town["communities"]]
    assert min(sizes) >= 3 and max(sizes) <= 12


def test_every_grid_has_2_or_3_workers_and_someone_on_duty(county):
    for _, _, grid in all_grids(county):
        assert 2 <= len(grid["workers"]) <= 3, grid["id"]
        assert grid["workers"][0]["on_duty"], grid["id"]


def test_people_have_mobile_numbers(county):
    for _, _, grid in all_grids(county):
        for person in [grid["head"], *grid["workers"]]:
            assert MOBILE.match(person["phone"]), person


def test_grids_lie_in_yongtai(county):
    yongtai = box(118.55, 25.60, 119.25, 26.10)
    for _, _, grid in all_grids(county):
        assert yongtai.covers(shape(grid["area"])), grid["id"]


def test_grid_areas_do_not_overlap(county):
    polygons = [shape(grid["area"]) for _, _, grid in all_grids(county)]
    assert all(polygon.is_valid and polygon.exterior.is_ccw for polygon in polygons)
    tree = STRtree(polygons)
    left, right = tree.query(polygons, predicate="intersects")
    for i, j in zip(left, right):
        if i < j:
            # neighbours may share an edge or a corner, nothing more
            assert polygons[i].intersection(polygons[j]).area < 1e-12, (i, j)


def test_the_articles_places_are_where_the_article_puts_them(county):
    assert grid_where(county, "樟城镇", "南门社区", "南湖花园二区")
    assert grid_where(county, "葛岭镇", "方广社区", "悦山小区3号楼")
    chengfeng = next(town for town in county["towns"] if town["name"] == "城峰镇")
    assert any(community["name"] == "汤洋村" for community in chengfeng["communities"])


def test_the_demo_requests_wechat_group_is_the_nanhu_grid(county):
    # devstack.demo files its street-light request from wx-zc-nanmen-02
    (grid,) = grid_where(county, "樟城镇", "南门社区", "南湖花园二区")
    assert grid["wechat_groups"] == ["wx-zc-nanmen-02"]


def test_departments_cover_the_request_categories(county):
    categories = {department["id"]: department["categories"] for department in county["departments"]}
    assert categories == {
        "power": ["street_lighting"], "water": ["water_supply"], "urban_management": ["sanitation"],
        "transport": ["roads"], "justice": ["dispute"], "civil_affairs": ["welfare"], "emergency": ["safety"],
        "housing": ["housing"], "health": ["health"], "police": ["public_order"],
    }


def test_two_builds_are_identical():
    assert json.dumps(build_county(), ensure_ascii=False) == json.dumps(build_county(), ensure_ascii=False)


def test_version_is_the_one_asked_for():
    assert build_county(version=7)["version"] == 7


def test_main_writes_utf8_json(tmp_path):
    output = tmp_path / "yongtai.json"
    demo_county.main([str(output)])
    text = output.read_text(encoding="utf-8")
    assert "南湖花园二区" in text
    assert json.loads(text) == build_county()


def test_demo_requests_name_grids_of_the_demo_county():
    grid_ids = {grid["id"] for town in build_county()["towns"] for community in town["communities"] for grid in community["grids"]}
    named = [body["grid_id"] for _, body in DEMO_REQUESTS if "grid_id" in body]
    assert named and set(named) <= grid_ids
