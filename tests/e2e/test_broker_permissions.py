"""The platform runs with a broker user per service holding only the permissions
`wangge-admin rabbitmq setup` grants, and the external user can publish requests
and read their results, nothing else."""
import json
import os
import re
import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection, Exchange, Queue

from devstack.demo_county import build_county
from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.broker import DEFAULT_MANAGEMENT_URL
from tests.support.integrators import as_account, integrators_admin, issued, new_source, remove_account
from tests.support.polling import eventually
from tests.support.services import running_platform
from wangge import topology
from wangge.admin import setup_rabbitmq


def user_uri(module_amqp_uri, user, password):
    vhost = module_amqp_uri.rsplit("/", 1)[1]
    return f"amqp://{user}:{quote(password)}@127.0.0.1:5672/{vhost}"


@pytest.fixture(scope="module")
def passwords(module_amqp_uri):
    secrets = {user: uuid.uuid4().hex for user, _ in topology.users_and_permissions()}
    vhost = requests.utils.unquote(module_amqp_uri.rsplit("/", 1)[1])
    management = DEFAULT_MANAGEMENT_URL.replace("http://", "http://guest:guest@")
    setup_rabbitmq(management, vhost, secrets, module_amqp_uri)
    return secrets


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, passwords, tmp_path_factory):
    names = ["intake", "routing", "notify"]
    directory = tmp_path_factory.mktemp("permissions")
    services = {}
    with ExitStack() as stack:  # each service with its own user, as in production
        for name in names:
            env = {"NOTIFY_RESIDENT_CHANNEL": "outbox", "NOTIFY_WORKER_CHANNEL": "outbox", "NOTIFY_OUTBOX_PATH": str(directory / "outbox.jsonl")}
            started = stack.enter_context(running_platform([name], amqp_uri=user_uri(module_amqp_uri, name, passwords[name]),
                                                           mongo_uri=mongo_uri, log_dir=directory, extra_env=env))
            services[name] = started[name][0]
        assert services["routing"].as_admin.put(services["routing"].url("/api/v1/registry"), json=build_county(), timeout=120).status_code == 200
        yield services, directory


def test_services_with_their_own_users_carry_a_request_to_a_notice(platform, module_amqp_uri, passwords):
    services, directory = platform
    body = inbound_body(grid_id=build_county()["towns"][0]["communities"][0]["grids"][0]["id"], reporter={"phone": "13912345000"})
    with Connection(user_uri(module_amqp_uri, "external", passwords["external"]), transport_options={"confirm_publish": True}) as connection:
        publish_request(connection, body, message_id=uuid.uuid4().hex, source=body["source"])

    def assigned():
        items = services["intake"].as_user("integrator-hotline12345").get(services["intake"].url("/api/v1/requests"), params={"source": body["source"], "external_ref": body["external_ref"]}, timeout=10).json()["items"]
        return items and items[0]["status"] == "assigned" and items[0]
    view = eventually(assigned, timeout=20)
    outbox = directory / "outbox.jsonl"
    eventually(lambda: outbox.exists() and view["tracking_no"] in outbox.read_text(encoding="utf-8"), timeout=15)


def results_for(connection, external_ref, wanted, seen, source="hotline12345"):
    """(routing key, message_id, body) of new results on ``source``'s queue for its request ``external_ref``,
    read with the connection's account, until ``wanted`` of them have come. Results come at least once:
    like any consumer, this one drops a message_id it has ``seen``."""
    channel, found = connection.channel(), []

    def more():
        message = channel.basic_get(topology.outbound_queue_name(source), no_ack=True)
        if message is not None:
            body = json.loads(message.body)
            if body["external_ref"] == external_ref and message.properties["message_id"] not in seen:
                seen.add(message.properties["message_id"])
                found.append((message.delivery_info["routing_key"], message.properties["message_id"], body))
        return len(found) >= wanted

    eventually(more, timeout=20, interval=0.05)
    return found


def test_the_sending_system_hears_its_request_assigned_then_resolved_with_the_result(platform, module_amqp_uri, passwords):
    services, _ = platform
    body = inbound_body(grid_id=build_county()["towns"][0]["communities"][0]["grids"][0]["id"], text="绿洲小区3栋门口的井盖被人偷走了")
    center = services["routing"].as_user("county-center")
    with Connection(user_uri(module_amqp_uri, "external", passwords["external"]), transport_options={"confirm_publish": True}) as connection:
        publish_request(connection, body, message_id=uuid.uuid4().hex, source=body["source"])
        seen = set()
        [(key, message_id, assigned)] = results_for(connection, body["external_ref"], 1, seen)
        assert key == "request.hotline12345.assigned"
        assert (assigned["status"], assigned["source"], assigned["message_id"]) == ("assigned", "hotline12345", message_id)

        case_id = f"C-{assigned['tracking_no']}"
        resolved = center.post(services["routing"].url(f"/api/v1/cases/{case_id}/resolve"), json={"note": "已更换路灯灯头"}, timeout=10)
        assert resolved.status_code == 200, resolved.text
        [(key, _, result)] = results_for(connection, body["external_ref"], 1, seen)
    assert key == "request.hotline12345.resolved"
    assert (result["result"], result["previous_status"]) == ("已更换路灯灯头", "assigned")
    assert result["case_version"] > assigned["case_version"]


@pytest.fixture
def system(platform, module_amqp_uri):
    """A system added as an operator adds one (``wangge-admin integrators add``): its name and its account's password."""
    services, _ = platform
    source = new_source()
    password, _ = issued(integrators_admin(module_amqp_uri, services["intake"])("add", source))
    yield source, password
    remove_account(source)


def test_a_system_with_its_own_account_hears_its_request_through_to_the_residents_satisfaction(platform, module_amqp_uri, system):
    """The whole way with one system's own account: it files, hears assigned, resolved with the result, and closed
    with the resident's satisfaction, on its own queue; another system's key and queue stay shut to it."""
    services, directory = platform
    source, password = system
    body = inbound_body(source=source, grid_id=build_county()["towns"][0]["communities"][0]["grids"][2]["id"],
                        text="幸福里小区2栋楼道的灯坏了一个星期", reporter={"phone": "13912345111"})
    center = services["routing"].as_user("county-center")
    seen = set()
    with as_account(module_amqp_uri, source, password) as connection:
        publish_request(connection, body, message_id=uuid.uuid4().hex, source=source)
        [(key, _, assigned)] = results_for(connection, body["external_ref"], 1, seen, source=source)
        assert (key, assigned["source"]) == (f"request.{source}.assigned", source)

        case_id = f"C-{assigned['tracking_no']}"
        resolved = center.post(services["routing"].url(f"/api/v1/cases/{case_id}/resolve"), json={"note": "已更换楼道灯"}, timeout=10)
        assert resolved.status_code == 200, resolved.text
        [(key, _, result)] = results_for(connection, body["external_ref"], 1, seen, source=source)
        assert (key, result["result"], result["satisfaction"]) == (f"request.{source}.resolved", "已更换楼道灯", None)

        # the resident answers the follow-up from the link in notify's message
        outbox = directory / "outbox.jsonl"
        link = eventually(lambda: outbox.exists() and re.search(
            rf"（编号{assigned['tracking_no']}）[^\n]*?/follow-up/([A-Za-z0-9_-]+)", outbox.read_text(encoding="utf-8")), timeout=20)
        assert link, "no follow-up message for the resident"
        answered = requests.post(services["routing"].url(f"/api/v1/follow-up/{link.group(1)}"), json={"solved": True, "satisfaction": 4}, timeout=10)
        assert answered.status_code == 200, answered.text
        [(key, _, closed)] = results_for(connection, body["external_ref"], 1, seen, source=source)
        assert (key, closed["satisfaction"], closed["solved"], closed["result"]) == (f"request.{source}.closed", 4, True, "已更换楼道灯")
    with as_account(module_amqp_uri, source, password) as connection, pytest.raises((AccessRefused, NotAllowed)):
        publish_request(connection, inbound_body(), message_id=uuid.uuid4().hex, source="hotline12345")
    with as_account(module_amqp_uri, source, password) as connection, pytest.raises((AccessRefused, NotAllowed)):
        connection.channel().basic_get(topology.outbound_queue_name("hotline12345"), no_ack=True)


@pytest.mark.parametrize("attempt", ["declare_queue", "publish_to_routing_events", "consume_inbound", "publish_results",
                                     "publish_under_another_source"])
def test_external_user_may_only_publish_requests_and_read_results(module_amqp_uri, passwords, attempt):
    with Connection(user_uri(module_amqp_uri, "external", passwords["external"]), transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        with pytest.raises((AccessRefused, NotAllowed)):
            if attempt == "declare_queue":
                Queue("sneaky", durable=True)(channel).declare()
            elif attempt == "publish_to_routing_events":
                connection.Producer(channel).publish(json.dumps({}), exchange=Exchange("routing.events", type="topic", passive=True), routing_key="case_closed")
            elif attempt == "publish_under_another_source":  # a system not known up front has an account of its own
                publish_request(connection, inbound_body(source="t-elsewhere"), message_id=uuid.uuid4().hex, source="t-elsewhere")
            elif attempt == "publish_results":
                connection.Producer(channel).publish(json.dumps({}), exchange=Exchange(topology.OUTBOUND_EXCHANGE_NAME, type="topic", passive=True),
                                                     routing_key="request.hotline12345.closed")
            else:
                channel.basic_consume(topology.INBOUND_QUEUE_NAME, callback=lambda message: None)


def test_the_example_integrator_reads_its_results_with_its_own_account(platform, module_amqp_uri, passwords):
    body = inbound_body(grid_id=build_county()["towns"][0]["communities"][0]["grids"][1]["id"], text="门口的垃圾桶满了三天没人清运")
    uri = user_uri(module_amqp_uri, "external", passwords["external"])
    with Connection(uri, transport_options={"confirm_publish": True}) as connection:
        publish_request(connection, body, message_id=uuid.uuid4().hex, source=body["source"])
    example = Path(__file__).resolve().parents[2] / "integration" / "results_example.py"

    def printed():
        # the account's password in the environment, as the example asks, not on its command line
        run = subprocess.run([sys.executable, str(example), "--source", "hotline12345", "--seconds", "2"],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "AMQP_URI": uri})
        assert run.returncode == 0, run.stderr
        return [line for line in run.stdout.splitlines() if line.startswith(body["external_ref"])]

    [line] = eventually(printed, timeout=30)
    assert ": assigned at " in line
