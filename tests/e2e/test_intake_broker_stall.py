"""A resident's filing is answered once the request is stored, not once the broker has
confirmed its announcement: on a node of the test's own that blocks every publisher
(a memory alarm, as a broker writing hard does for a while), the answer comes at once
and the announcement follows when the broker takes messages again."""
import time
import uuid

import pytest
import requests
from kombu import Connection
from pymongo import MongoClient

from tests.support.polling import eventually
from tests.support.private_broker import BrokerUnavailable, private_broker, without_private_broker
from tests.support.services import running_service
from wangge import topology

pytestmark = pytest.mark.e2e

# longer than any answer that does not wait for the broker; shorter than the alarm lasts
ANSWER_TIMEOUT_SECONDS = 10
ROUTING_QUEUE = "evt-intake-request_received--routing.open_case"


@pytest.fixture(scope="module")
def broker():
    try:
        with private_broker() as node:
            with Connection(node.amqp_uri) as connection:
                topology.declare_topology(connection)  # routing's queue for request_received among them
            yield node
    except BrokerUnavailable as exc:
        without_private_broker(exc)


def test_a_filing_is_answered_while_the_broker_holds_back_its_confirm(broker, mongo_uri, tmp_path):
    database = f"intake_stall_{uuid.uuid4().hex[:8]}"
    with running_service("intake", amqp_uri=broker.amqp_uri, mongo_uri=mongo_uri, log_dir=tmp_path, database=database) as intake:
        broker.ctl("set_vm_memory_high_watermark", "0")  # every publishing connection blocked
        try:
            started = time.monotonic()
            filed = requests.post(intake.url("/api/v1/requests"), timeout=ANSWER_TIMEOUT_SECONDS,
                                  json={"channel": "web", "text": "南湖花园二区的路灯坏了"})
            answered_in = time.monotonic() - started
            assert filed.status_code == 201, filed.text
            requests_stored = MongoClient(mongo_uri)[database]["requests"]
            stored = requests_stored.find_one({"tracking_no": filed.json()["tracking_no"]})
            assert stored["announce"]["state"] == "pending"  # the broker has not taken it
        finally:
            broker.ctl("set_vm_memory_high_watermark", "0.4")
        announced = eventually(lambda: requests_stored.find_one({"_id": stored["_id"], "announce.state": "announced"}), timeout=60)
        assert announced, f"request_received never published; answered in {answered_in:.1f} s"
        with Connection(broker.amqp_uri) as connection:
            waiting = connection.default_channel.queue_declare(queue=ROUTING_QUEUE, passive=True).message_count
        assert waiting == 1  # routing's request_received, for nobody consumes it here
        print(f"\nfiled while publishers were blocked: answered in {answered_in:.2f} s, announced once unblocked")
