"""Publishing many events with one wait for the broker's confirms.

nameko's dispatcher waits for the broker's confirm of each event before the next
one; a quorum queue confirms a message once a majority has it on disk, so a study
round to every grid group (1,429 in the demo county) waited for ~1,429 disk
writes one after another. Here every event of a batch is on the wire before the
first confirm is awaited, and the broker confirms them together.
"""
from kombu import Connection, Producer
from nameko.extensions import DependencyProvider

from wangge import topology

CONFIRM_TIMEOUT_SECONDS = 30


class ConfirmedBatch:
    """The delivery tags the broker confirmed, refused or returned as unroutable."""

    def __init__(self, channel, count):
        self.count = count
        self.confirmed, self.refused = set(), set()
        self._returned_ids = set()
        self._settled_up_to = 0
        channel.events["basic_ack"].add(self._ack)
        channel.events["basic_nack"].add(self._nack)
        channel.events["basic_return"].add(self._returned)

    def _settle(self, delivery_tag, multiple, into):
        tags = range(self._settled_up_to + 1, delivery_tag + 1) if multiple else [delivery_tag]
        into.update(tags)
        self._settled_up_to = max(self._settled_up_to, delivery_tag) if multiple else self._settled_up_to

    def _ack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, self.confirmed)

    def _nack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, self.refused)

    def _returned(self, exc, exchange, routing_key, message):
        # an unroutable message comes back before its ack: nobody has a queue for it
        self._returned_ids.add(message.properties.get("message_id"))

    def settled(self):
        return len(self.confirmed | self.refused) >= self.count

    def delivered(self, message_ids):
        """Positions (0-based) of the messages the broker confirmed and routed to a queue."""
        return {tag - 1 for tag in self.confirmed - self.refused if message_ids[tag - 1] not in self._returned_ids}


def publish_events(amqp_uri, service_name, events, timeout=CONFIRM_TIMEOUT_SECONDS):
    """Publish ``(event_type, envelope)`` pairs to the service's events exchange,
    persistent and mandatory, each with its event id as ``message_id``; the
    positions of those the broker confirmed and routed to a queue."""
    if not events:
        return set()
    exchange = topology.events_exchange(service_name)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.confirm_select()
        batch = ConfirmedBatch(channel, len(events))
        producer = Producer(channel, exchange=exchange, serializer="json")
        for event_type, envelope in events:
            producer.publish(envelope, routing_key=event_type, mandatory=True, delivery_mode=2, message_id=envelope["event_id"])
        while not batch.settled():
            connection.drain_events(timeout=timeout)
        return batch.delivered([envelope["event_id"] for _, envelope in events])


class EventBatches(DependencyProvider):
    """``publish(events)``: :func:`publish_events` for this service, over the service's broker."""

    def get_dependency(self, worker_ctx):
        config = self.container.config
        return lambda events: publish_events(config["AMQP_URI"], self.container.service_name, events)
