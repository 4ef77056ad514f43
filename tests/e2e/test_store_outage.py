"""A store outage is not the messages' fault: they wait it out instead of using up
their attempts, and readiness says what is missing while liveness stays up."""
import time
import uuid

import pytest
import requests
from kombu import Connection

from devstack.processes import start_store, store_answers, wait_until
from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.services import running_service
from wangge import admin, topology

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 20  # longer than the retry budget of the test tuning: 3 attempts, each waiting 5 s for the store


class PrivateStore:
    """A store on a fixed port and data directory, so it can be stopped and come back."""

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/?retryWrites=false"
        self.process = None

    def start(self):
        self.process = start_store(self.port, self.directory / "data", self.directory / "store.log")
        wait_until(lambda: store_answers(self.uri), 30, "the store answered", process=self.process)

    def stop(self):
        self.process.stop()


@pytest.fixture
def private_store(tmp_path):
    store = PrivateStore(tmp_path)
    store.start()
    yield store
    store.stop()


def test_requests_published_during_a_store_outage_are_filed_when_it_returns_and_none_is_dead_lettered(
        private_store, module_amqp_uri, tmp_path):
    with running_service("intake", amqp_uri=module_amqp_uri, mongo_uri=private_store.uri, log_dir=tmp_path) as intake:
        private_store.stop()
        readiness = requests.get(intake.url("/health/ready"), timeout=5)
        assert readiness.status_code == 503
        assert readiness.json()["missing"] == ["store"]
        assert readiness.json()["checks"]["broker"] == "ok"
        assert requests.get(intake.url("/health/live"), timeout=5).status_code == 200

        bodies = [inbound_body() for _ in range(5)]
        with Connection(module_amqp_uri, transport_options={"confirm_publish": True}) as connection:
            for body in bodies:
                publish_request(connection, body, message_id=uuid.uuid4().hex, source="hotline12345")
        # long enough for every message to fail many times over
        time.sleep(OUTAGE_SECONDS)
        private_store.start()

        def filed(body):
            return intake.as_user(f"integrator-{body['source']}").get(
                intake.url("/api/v1/requests"), timeout=10,
                params={"source": body["source"], "external_ref": body["external_ref"]}).json()["items"]

        for body in bodies:
            assert eventually(lambda: filed(body), timeout=60)
        assert list(admin.iter_dead_letters(module_amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE)) == []
        assert requests.get(intake.url("/health/ready"), timeout=5).status_code == 200
        assert not intake.process.exited()
