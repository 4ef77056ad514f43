"""One broker account per system: `wangge-admin integrators` against the real
RabbitMQ (a vhost of the module's own), and what the account may and may not do."""
import os
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
import requests
from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection, Exchange, Queue

from tests.support.broker import DEFAULT_MANAGEMENT_URL
from wangge import topology

REFUSED = (AccessRefused, NotAllowed)


@pytest.fixture(scope="module")
def vhost_uri(module_amqp_uri):
    with Connection(module_amqp_uri) as connection:
        topology.declare_topology(connection)
    return module_amqp_uri


@pytest.fixture
def source():
    """A system of this test's own; its account is removed afterwards (users are the broker's, not the vhost's)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    requests.delete(f"{DEFAULT_MANAGEMENT_URL}/api/users/integrator-{name}", auth=("guest", "guest"), timeout=10)


def admin(vhost_uri, *args):
    vhost = requests.utils.unquote(vhost_uri.rsplit("/", 1)[1])
    env = {**os.environ, "AMQP_URI": vhost_uri, "RABBITMQ_VHOST": vhost,
           "RABBITMQ_MANAGEMENT_URL": DEFAULT_MANAGEMENT_URL.replace("http://", "http://guest:guest@")}
    return subprocess.run([sys.executable, "-m", "wangge.admin", "integrators", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def as_account(vhost_uri, source, password):
    vhost = vhost_uri.rsplit("/", 1)[1]
    return Connection(f"amqp://integrator-{source}:{quote(password)}@127.0.0.1:5672/{vhost}",
                      transport_options={"confirm_publish": True}, connect_timeout=5)


def publish(connection, routing_key):
    connection.Producer(connection.channel()).publish(
        b"{}", exchange=Exchange(topology.INBOUND_EXCHANGE_NAME, type="topic", passive=True), routing_key=routing_key,
        content_type="application/json", message_id=uuid.uuid4().hex, retry=False)


def test_a_systems_account_publishes_under_its_own_source_and_reads_its_own_results_only(vhost_uri, source):
    added = admin(vhost_uri, "add", source)
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip().splitlines()[-1]

    with as_account(vhost_uri, source, password) as connection:
        publish(connection, f"request.{source}")  # confirmed: no exception
        assert connection.channel().basic_get(topology.outbound_queue_name(source), no_ack=True) is None
    for attempt in ("another_source", "another_queue", "declare"):
        with as_account(vhost_uri, source, password) as connection, pytest.raises(REFUSED):
            if attempt == "another_source":
                publish(connection, "request.hotline12345")
            elif attempt == "another_queue":
                connection.channel().basic_get(topology.outbound_queue_name("hotline12345"), no_ack=True)
            else:
                Queue("sneaky", durable=True)(connection.channel()).declare()

    again = admin(vhost_uri, "add", source)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert f"{source}\tenabled" in admin(vhost_uri, "list").stdout.splitlines()


def test_rotating_a_password_shuts_the_old_one_out_and_disabling_shuts_the_account_out(vhost_uri, source):
    old = admin(vhost_uri, "add", source).stdout.strip().splitlines()[-1]
    rotated = admin(vhost_uri, "rotate", source)
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert new != old
    with pytest.raises(REFUSED), as_account(vhost_uri, source, old) as connection:
        connection.connect()
    with as_account(vhost_uri, source, new) as connection:
        publish(connection, f"request.{source}")

    disabled = admin(vhost_uri, "disable", source)
    assert disabled.returncode == 0, disabled.stderr
    assert f"{source}\tdisabled" in admin(vhost_uri, "list").stdout.splitlines()
    with pytest.raises(REFUSED), as_account(vhost_uri, source, new) as connection:
        connection.connect()


def test_a_source_that_is_not_one_word_of_a_routing_key_is_refused(vhost_uri):
    refused = admin(vhost_uri, "add", "hot.line#")
    assert refused.returncode == 1 and "is not a source" in refused.stderr
