"""The operators' dead-letter tools read a queue of any length one message at a time."""
import uuid

import pytest
from kombu import Connection, Queue

from wangge import admin

pytestmark = pytest.mark.e2e


def ready_count(amqp_uri, queue_name):
    with Connection(amqp_uri) as connection:
        return Queue(queue_name, durable=True)(connection.default_channel).queue_declare(passive=True).message_count


def test_listing_reads_as_it_goes_and_leaves_the_queue_as_it_was(amqp_uri):
    queue_name = f"wangge.test-{uuid.uuid4().hex[:8]}.dead"
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        Queue(queue_name, durable=True)(connection.default_channel).declare()
        for number in range(200):
            producer.publish({"number": number}, exchange="", routing_key=queue_name, serializer="json")
    try:
        listing = admin.iter_dead_letters(amqp_uri, queue_name)
        first = [next(listing) for _ in range(3)]
        assert [entry["body"] for entry in first] == ['{"number": 0}', '{"number": 1}', '{"number": 2}']
        # only what was read is held: the rest is still waiting in the queue
        assert ready_count(amqp_uri, queue_name) == 197
        listing.close()
        assert ready_count(amqp_uri, queue_name) == 200
        assert len(list(admin.iter_dead_letters(amqp_uri, queue_name, limit=50))) == 50
    finally:
        with Connection(amqp_uri) as connection:
            Queue(queue_name)(connection.default_channel).delete()
