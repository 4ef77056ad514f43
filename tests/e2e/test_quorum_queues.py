"""Quorum queues against the real broker: the delivery limit dead-letters what a
consumer can never settle, and an earlier version's classic queues migrate to quorum
queues with every message kept."""
import json
import subprocess
import sys
import time
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from tests.support.broker import drain, queue_types, throwaway_vhost
from tests.support.polling import eventually
from wangge import admin, topology

pytestmark = pytest.mark.e2e


@pytest.fixture
def vhost_uri():
    with throwaway_vhost() as uri:
        yield uri


def declare_everything(amqp_uri):
    with Connection(amqp_uri) as connection:
        topology.declare_topology(connection)


def publish_inbound(amqp_uri, bodies, source="hotline12345"):
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        for body in bodies:
            producer.publish(body, exchange=topology.INBOUND_EXCHANGE_NAME, routing_key=f"request.{source}",
                             serializer="json", message_id=uuid.uuid4().hex)


def test_every_queue_of_the_platform_is_a_quorum_queue_on_the_broker(vhost_uri):
    declare_everything(vhost_uri)
    types = queue_types(vhost_uri)
    assert {queue.name for queue in topology.all_queues()} <= set(types)
    assert {name for name, kind in types.items() if kind != "quorum"} == set()


def test_a_message_no_consumer_can_settle_is_dead_lettered_at_the_delivery_limit(vhost_uri):
    declare_everything(vhost_uri)
    with Connection(vhost_uri) as connection:  # without a message id, as nameko publishes events
        connection.Producer().publish({"text": "every consumer that takes me stops"}, exchange=topology.INBOUND_EXCHANGE_NAME,
                                      routing_key="request.hotline12345", serializer="json")
    handed_back = 0
    with Connection(vhost_uri) as connection:
        channel = connection.channel()
        queue = Queue(topology.INBOUND_QUEUE_NAME)(channel)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = queue.get(no_ack=False)
            if message is None:
                if handed_back > topology.DELIVERY_LIMIT:
                    break
                time.sleep(0.05)
                continue
            message.requeue()  # as a consumer that dies holding it: the broker takes it back
            handed_back += 1
        channel.close()
    # delivered once, then again up to the limit, then given up on
    assert handed_back == topology.DELIVERY_LIMIT + 1
    # at-least-once dead-lettering: the broker's own worker moves it to the dead-letter queue, a moment later
    listed = eventually(lambda: list(admin.iter_dead_letters(vhost_uri, topology.INBOUND_DEAD_LETTER_QUEUE)))
    assert len(listed) == 1
    assert "delivery limit" in listed[0]["reason"]
    assert listed[0]["queue"] == topology.INBOUND_QUEUE_NAME
    assert json.loads(listed[0]["body"]) == {"text": "every consumer that takes me stops"}
    # and it can be sent back by its id
    assert [entry["id"] for entry in admin.replay_dead_letters(vhost_uri, topology.INBOUND_DEAD_LETTER_QUEUE,
                                                               {listed[0]["id"]})] == [listed[0]["id"]]
    assert [json.loads(m.body) for m in drain(vhost_uri, topology.INBOUND_QUEUE_NAME, expected=1)] == [
        {"text": "every consumer that takes me stops"}]


def declare_as_an_earlier_version_did(amqp_uri):
    """Classic queues with the arguments the platform gave them before quorum queues."""
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        for queue in topology.all_queues():
            arguments = {k: v for k, v in (queue.queue_arguments or {}).items()
                         if k in ("x-dead-letter-exchange", "x-dead-letter-routing-key")}
            if queue.name in {q.name for q in topology.consumed_queues()} or queue.name.startswith("wangge.outbound."):
                arguments = {}
            old = Queue(queue.name, exchange=queue.exchange or Exchange(""), routing_key=queue.routing_key,
                        durable=True, queue_arguments=arguments or None)
            if queue.exchange is not None and queue.exchange.name:
                queue.exchange(channel).declare()
            old(channel).declare()


def run_admin(amqp_uri, *args):
    return subprocess.run([sys.executable, "-m", "wangge.admin", "--amqp-uri", amqp_uri, "topology", *args],
                          capture_output=True, text=True, timeout=120)


def test_an_earlier_versions_classic_queues_become_quorum_queues_keeping_every_message(vhost_uri):
    declare_as_an_earlier_version_did(vhost_uri)
    assert set(queue_types(vhost_uri).values()) == {"classic"}
    waiting = [{"text": f"request {n}"} for n in range(30)]
    publish_inbound(vhost_uri, waiting)
    with Connection(vhost_uri) as connection:
        # a retry waiting its turn, and a dead letter
        connection.Producer().publish({"retry": 1}, exchange="", routing_key=topology.retry_queue_name(topology.INBOUND_QUEUE_NAME),
                                      serializer="json", headers={"x-wangge-attempts": 1}, expiration=3600)
        connection.Producer().publish({"dead": 1}, exchange="", routing_key=topology.INBOUND_DEAD_LETTER_QUEUE, serializer="json")

    migrated = run_admin(vhost_uri, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    types = queue_types(vhost_uri)
    assert {name for name, kind in types.items() if kind != "quorum"} == set()
    assert not [name for name in types if name.endswith(".migrating")]
    assert f"{topology.INBOUND_QUEUE_NAME}: now a quorum queue, 30 message(s)" in migrated.stdout

    # every message is where it was, and the new queue is bound as the old one was
    publish_inbound(vhost_uri, [{"text": "after the migration"}])
    bodies = [json.loads(m.body) for m in drain(vhost_uri, topology.INBOUND_QUEUE_NAME, expected=31)]
    assert bodies == waiting + [{"text": "after the migration"}]
    retried = drain(vhost_uri, topology.retry_queue_name(topology.INBOUND_QUEUE_NAME), expected=1)
    assert [(json.loads(m.body), m.headers["x-wangge-attempts"]) for m in retried] == [({"retry": 1}, 1)]
    assert [json.loads(m.body) for m in drain(vhost_uri, topology.INBOUND_DEAD_LETTER_QUEUE, expected=1)] == [{"dead": 1}]

    again = run_admin(vhost_uri, "migrate")
    assert again.returncode == 0 and "now a quorum queue" not in again.stdout


def test_retries_whose_time_comes_during_the_migration_reach_their_queue(vhost_uri):
    declare_as_an_earlier_version_did(vhost_uri)
    retry_queue = topology.retry_queue_name(topology.INBOUND_QUEUE_NAME)
    with Connection(vhost_uri) as connection:
        producer = connection.Producer()
        # a long wait at the head holds the short ones behind it in the old queue
        producer.publish({"retry": "long"}, exchange="", routing_key=retry_queue, serializer="json", expiration=3600)
        for number in range(50):
            producer.publish({"retry": number}, exchange="", routing_key=retry_queue, serializer="json", expiration=0.02)

    migrated = run_admin(vhost_uri, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    time.sleep(1)  # the short waits are over: each is in the inbound queue or about to be
    retried = drain(vhost_uri, topology.INBOUND_QUEUE_NAME, timeout=15, expected=50)
    waiting = drain(vhost_uri, retry_queue, timeout=2)
    assert sorted(json.loads(m.body)["retry"] for m in retried) == list(range(50))
    assert [json.loads(m.body) for m in waiting] == [{"retry": "long"}]


def test_a_queue_being_consumed_is_left_alone_and_reported(vhost_uri):
    declare_as_an_earlier_version_did(vhost_uri)
    with Connection(vhost_uri) as connection:
        channel = connection.channel()
        channel.basic_consume(topology.INBOUND_QUEUE_NAME, callback=lambda message: None)
        migrated = run_admin(vhost_uri, "migrate")
        channel.close()
    assert migrated.returncode == 1
    assert topology.INBOUND_QUEUE_NAME in migrated.stderr
    assert queue_types(vhost_uri)[topology.INBOUND_QUEUE_NAME] == "classic"
