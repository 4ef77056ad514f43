"""A batch of events on the real broker, confirmed together."""
import uuid

from kombu import Connection, Queue

from wangge import topology
from wangge.publishing import publish_events


def test_a_batch_says_which_events_reached_a_queue_and_each_arrives_once(amqp_uri):
    service = f"batch{uuid.uuid4().hex[:6]}"
    queue = Queue(f"{service}.listener", exchange=topology.events_exchange(service), routing_key="campaign_due", durable=True)
    with Connection(amqp_uri) as connection:
        queue(connection.default_channel).declare()
    batch = [("campaign_due", {"event_id": uuid.uuid4().hex, "n": n}) for n in range(5)]
    batch.insert(2, ("nobody_listens", {"event_id": uuid.uuid4().hex, "n": "lost"}))

    taken = publish_events(amqp_uri, service, batch)

    assert taken == {0, 1, 3, 4, 5}
    with Connection(amqp_uri) as connection:
        bound = queue(connection.default_channel)
        received = []
        while (message := bound.get(no_ack=True)) is not None:
            received.append(message.payload["n"])
    assert received == [0, 1, 2, 3, 4]
