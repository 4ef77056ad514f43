"""Missed deadlines escalate exactly once per level, with two routing processes racing."""
import pytest
import requests

from devstack.demo_county import build_county
from tests.support.broker import drain, watch_queue
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_platform
from wangge import events, topology

FAST_SLA = {
    "SLA_FIRST_RESPONSE_MINUTES": "0.03",  # 1.8 s to answer at each level
    "SLA_URGENT_FIRST_RESPONSE_MINUTES": "0.03",
    "SLA_CHECK_INTERVAL_SECONDS": "0.2",
}


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with running_platform(["intake", "routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, replicas={"routing": 2},
                          log_dir=tmp_path_factory.mktemp("logs"), extra_env=FAST_SLA) as services:
        county = build_county()
        routing = services["routing"][0]
        assert routing.as_admin.put(routing.url("/api/v1/registry"), json=county, timeout=120).status_code == 200
        yield services["intake"][0], services["routing"], county


def test_unanswered_case_climbs_one_level_per_missed_deadline_exactly_once(platform, module_amqp_uri):
    intake, routing, county = platform
    grid = county["towns"][0]["communities"][0]["grids"][0]
    with watch_queue(module_amqp_uri, topology.events_exchange("routing"), events.CASE_ESCALATED) as watch:
        filed = requests.post(intake.url("/api/v1/requests"), timeout=10,
                              json={"channel": "hotline", "text": "路灯不亮好几天了", "grid_id": grid["id"]}).json()

        center = authorized_session("county-center")

        def case_at_department():
            view = center.get(intake.url(filed["url"]), timeout=10).json()
            if not view.get("case_id"):
                return None
            case = center.get(routing[1].url(f"/api/v1/cases/{view['case_id']}"), timeout=10).json()
            return case if case["level"] == "department" else None

        case = eventually(case_at_department, timeout=60)
        escalations = drain(module_amqp_uri, watch, timeout=3)

    climbs = [(entry["from_level"], entry["to_level"]) for entry in case["timeline"] if entry["kind"] == "escalation"]
    assert climbs == [("grid", "community"), ("community", "town"), ("town", "department")]
    breaches = [entry for entry in case["timeline"] if entry["kind"] == "sla_breach"]
    assert len(breaches) == 3
    assert {(entry["by"], entry["role"]) for entry in case["timeline"] if entry["kind"] == "escalation"} == {("routing", "system")}
    assert case["department"]["id"] == "power"
    assert case["status"] == "escalated"
    # each escalation announced; a repeat could only carry the same event id
    levels = {events.read_event(events.CASE_ESCALATED, message.decode())["data"]["level"]: message for message in escalations}
    assert set(levels) == {"community", "town", "department"}
    event_ids = {events.read_event(events.CASE_ESCALATED, m.decode())["event_id"] for m in escalations}
    assert len(event_ids) == 3

