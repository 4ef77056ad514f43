"""A burst of residents reporting the same thing at once, to two routing processes."""
import eventlet
import pytest
import requests
from kombu import Connection, Queue

from devstack.demo_county import build_county
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_platform
from wangge import topology

BURST = 29


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with running_platform(["intake", "routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, replicas={"routing": 2},
                          log_dir=tmp_path_factory.mktemp("logs")) as services:
        county = build_county()
        routing = services["routing"][0]
        assert routing.as_admin.put(routing.url("/api/v1/registry"), json=county, timeout=120).status_code == 200
        yield services["intake"][0], services["routing"], county


def dead_letters(amqp_uri):
    with Connection(amqp_uri) as connection:
        queue = Queue(topology.dead_letter_queue_name("routing"), durable=True)(connection.default_channel)
        return queue.queue_declare(passive=True).message_count


def test_a_typhoon_burst_of_one_report_becomes_one_case_with_every_reporter(platform, module_amqp_uri):
    intake, routing, county = platform
    grid = county["towns"][0]["communities"][0]["grids"][0]

    def report(n):
        body = {"channel": "wechat_group", "grid_id": grid["id"], "reporter": {"name": f"居民{n}"},
                "text": f"南湖花园二区的路灯因为海葵台风受损，晚上一片漆黑（{n}号楼）"}
        response = requests.post(intake.url("/api/v1/requests"), json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    center = authorized_session("county-center")

    def view(filed):
        return center.get(intake.url(filed["url"]), timeout=10).json()

    first = report(0)
    case_id = eventually(lambda: view(first).get("case_id"), timeout=15)
    burst = list(eventlet.GreenPool(BURST).imap(report, range(1, BURST + 1)))

    def settled():
        case = center.get(routing[0].url(f"/api/v1/cases/{case_id}"), timeout=10).json()
        return case["reporter_count"] == BURST + 1 or dead_letters(module_amqp_uri) > 0

    eventually(settled, timeout=60, interval=0.2)
    assert dead_letters(module_amqp_uri) == 0
    assert eventually(lambda: all(view(t)["status"] == "merged" for t in burst), timeout=15)
    assert {view(t)["case_id"] for t in burst} == {case_id}
