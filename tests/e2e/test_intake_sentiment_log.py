"""The 民情日志 read by the people of the grid registry: intake asks routing's grid
directory (with its own client token) who works in, heads and leads a grid, and
routing places requests in grids; both as separate processes."""
import pytest
import requests

from tests.support.polling import eventually
from tests.support.services import running_service

pytestmark = pytest.mark.e2e

WORKER_02, HEAD_02 = "w-zc-nanmen-02-1", "w-zc-nanmen-02-h"
GRID_01, GRID_02 = "YT-ZC-NM-01", "YT-ZC-NM-02"


def person(person_id, name):
    return {"id": person_id, "name": name}


REGISTRY = {
    "version": 1,
    "county": {"id": "yongtai", "name": "永泰县"},
    "towns": [{
        "id": "zhangcheng", "name": "樟城镇", "head": person("lead-zhangcheng", "樟城镇负责人"),
        "communities": [{
            "id": "zc-nanmen", "name": "南门社区", "head": person("lead-zc-nanmen", "南门社区负责人"),
            "grids": [
                {"id": GRID_01, "name": "南门社区第一网格", "head": person("w-zc-nanmen-01-h", "张水如"),
                 "workers": [person("w-zc-nanmen-01-1", "李梅")], "wechat_groups": ["wx-zc-nanmen-01"]},
                {"id": GRID_02, "name": "南门社区第二网格", "head": person(HEAD_02, "林美华"),
                 "workers": [person(WORKER_02, "余雪华")], "wechat_groups": ["wx-zc-nanmen-02"]},
            ],
        }],
    }],
}


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    with running_service("routing", amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir) as routing:
        loaded = routing.as_admin.put(routing.url("/api/v1/registry"), json=REGISTRY, timeout=60)
        assert loaded.status_code == 200, loaded.text
        with running_service("intake", amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir,
                             extra_env={"ROUTING_URL": routing.base_url}) as intake:
            yield intake


def file_request(intake, **body):
    response = requests.post(intake.url("/api/v1/requests"), json={"channel": "wechat_group", **body}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["tracking_no"]


def read_log(intake, reader, grid_id=None):
    params = {"limit": 500, **({"grid_id": grid_id} if grid_id else {})}
    return intake.as_user(reader).get(intake.url("/api/v1/sentiment-log"), params=params, timeout=10)


def logged(intake, reader, grid_id, tracking_no, kind="request_received"):
    entries = read_log(intake, reader, grid_id).json()["items"]
    return [entry for entry in entries if entry["tracking_no"] == tracking_no and entry["kind"] == kind]


@pytest.mark.parametrize("reader", [WORKER_02, HEAD_02])
def test_a_grid_worker_or_head_reads_the_log_of_their_own_grid_only(platform, reader):
    mine = file_request(platform, text="南湖花园二区路灯不亮，电话13912345678", grid_id=GRID_02)
    theirs = file_request(platform, text="绿洲小区门口积水", grid_id=GRID_01)

    [entry] = eventually(lambda: logged(platform, reader, GRID_02, mine))
    assert entry["summary"] == "南湖花园二区路灯不亮，电话139****5678"
    entries = read_log(platform, reader, GRID_02).json()["items"]
    assert {entry["grid_id"] for entry in entries} == {GRID_02}
    assert theirs not in {entry["tracking_no"] for entry in entries}

    for other in (GRID_01, None):
        refused = read_log(platform, reader, other)
        assert refused.status_code == 403, refused.text
        assert "grid_id" in refused.json()["fields"]


def test_a_request_routing_places_in_the_grid_joins_its_log_from_the_start(platform):
    # no grid named by the sender: routing finds it from the WeChat group
    tracking_no = file_request(platform, text="楼道灯坏了", wechat_group_id="wx-zc-nanmen-02")
    assert eventually(lambda: logged(platform, WORKER_02, GRID_02, tracking_no), timeout=20)
    assert eventually(lambda: logged(platform, WORKER_02, GRID_02, tracking_no, kind="case_status_changed"), timeout=20)


def test_the_command_centre_reads_every_grids_log(platform):
    numbers = [file_request(platform, text="路灯不亮", grid_id=grid_id) for grid_id in (GRID_01, GRID_02)]
    for tracking_no in numbers:
        assert eventually(lambda: logged(platform, "county-center", None, tracking_no))


@pytest.mark.parametrize("lead", ["lead-zc-nanmen", "lead-zhangcheng"])
def test_community_and_town_leads_read_the_log_of_a_grid_they_lead(platform, lead):
    tracking_no = file_request(platform, text="路灯不亮", grid_id=GRID_02)
    assert eventually(lambda: logged(platform, lead, GRID_02, tracking_no))
    refused = read_log(platform, lead)
    assert refused.status_code == 403, refused.text
    assert "grid_id" in refused.json()["fields"]
