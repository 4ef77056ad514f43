"""The platform runs with a broker user per service holding only the permissions
`wangge-admin rabbitmq setup` grants, and the external user can publish requests
and nothing else."""
import json
import uuid
from contextlib import ExitStack
from urllib.parse import quote

import pytest
import requests
from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection, Exchange, Queue

from devstack.demo_county import build_county
from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.broker import DEFAULT_MANAGEMENT_URL
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


@pytest.mark.parametrize("attempt", ["declare_queue", "publish_to_routing_events", "consume_inbound"])
def test_external_user_may_only_publish_requests(module_amqp_uri, passwords, attempt):
    with Connection(user_uri(module_amqp_uri, "external", passwords["external"]), transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        with pytest.raises((AccessRefused, NotAllowed)):
            if attempt == "declare_queue":
                Queue("sneaky", durable=True)(channel).declare()
            elif attempt == "publish_to_routing_events":
                connection.Producer(channel).publish(json.dumps({}), exchange=Exchange("routing.events", type="topic", passive=True), routing_key="case_closed")
            else:
                channel.basic_consume(topology.INBOUND_QUEUE_NAME, callback=lambda message: None)
