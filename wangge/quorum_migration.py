"""Moving a deployment's classic queues to the quorum queues the topology declares now.

RabbitMQ cannot change a queue's type in place, and refuses to declare a queue with
arguments other than those it was made with. So each queue still of the old kind is
emptied into a quorum queue beside it (``<name>.migrating``), deleted, declared anew
(with its bindings) and refilled. Every message is copied with publisher confirms
before its original is acknowledged, so nothing is lost if the migration stops half
way; run it again and it carries on from where it stopped (a ``.migrating`` queue
left behind is emptied back into its queue). Messages keep their body, properties and
headers; a per-message TTL (a retry waiting its turn) starts again from its full length.

The services must be stopped while it runs: a queue with consumers is left alone and
reported, since a consumer would hold the old declaration open.
"""
import logging
from dataclasses import dataclass, field

import amqp
import amqp.exceptions
from kombu import Connection, Queue

from wangge import topology

log = logging.getLogger(__name__)

MIGRATING_SUFFIX = ".migrating"
PRECONDITION_FAILED = 406
NOT_FOUND = 404


@dataclass
class MigrationReport:
    migrated: dict = field(default_factory=dict)  # queue name -> messages carried over
    busy: list = field(default_factory=list)  # queues with consumers: stop the services first
    in_place: list = field(default_factory=list)  # quorum queues already, or declared new as such

    @property
    def complete(self):
        return not self.busy


def queues_to_migrate(integrator_sources=()):
    """Every queue of the topology, and the results queues of systems added since it was
    written; each queue after those it sends messages to by name (dead-letter queues,
    then retry queues, then the rest), so that what a quorum queue dead-letters into a
    queue being migrated waits in it, at least once, rather than meeting an old queue
    about to be deleted or no queue at all."""
    extra = [topology.outbound_queue(source) for source in integrator_sources if source not in topology.INTEGRATOR_SOURCES]
    dead_letters = {queue.name for queue in topology.all_queues() if queue.name.endswith(".dead")}
    retries = {topology.retry_queue_name(queue.name) for queue in topology.consumed_queues()}

    def rank(queue):
        return 0 if queue.name in dead_letters else 1 if queue.name in retries else 2

    return sorted(topology.all_queues() + extra, key=rank)


def migrate(amqp_uri, integrator_sources=()):
    """Migrate every classic queue of the topology; returns a :class:`MigrationReport`."""
    report = MigrationReport()
    with Connection(amqp_uri) as connection:
        for queue in queues_to_migrate(integrator_sources):
            migrate_queue(connection, queue, report)
    return report


def holding_queue(queue):
    """Where a queue's messages wait while it is made anew. Bound as the queue is, so what
    is published meanwhile waits there too: a message may then reach the new queue twice
    (every consumer is idempotent), never not at all. It dead-letters as the queue does,
    so a retry whose time is up while it waits there (a migration interrupted, say) goes
    on to its queue rather than nowhere; no delivery limit, as nobody consumes it."""
    arguments = {key: value for key, value in queue.queue_arguments.items() if key != "x-delivery-limit"}
    return Queue(queue.name + MIGRATING_SUFFIX, exchange=queue.exchange, routing_key=queue.routing_key,
                 durable=True, queue_arguments=arguments)


def migrate_queue(connection, queue, report):
    holding = holding_queue(queue)
    state = queue_state(connection, queue)
    if state == "busy":
        report.busy.append(queue.name)
        return
    if state in ("quorum", "missing") and not exists(connection, holding.name):
        queue(connection.default_channel).declare()
        report.in_place.append(queue.name)
        return
    moved = 0
    if state == "classic":
        holding(connection.default_channel).declare()
        unbind(connection, queue)
        moved = empty_and_delete(connection, queue.name, holding.name)
    queue(connection.default_channel).declare()  # the quorum queue, with its binding
    if exists(connection, holding.name):
        unbind(connection, holding)
        moved = max(moved, move_messages(connection, holding.name, queue.name))
        connection.default_channel.queue_delete(holding.name)
    report.migrated[queue.name] = moved
    log.info("queue migrated to a quorum queue", extra={"queue": queue.name, "messages": moved})


def empty_and_delete(connection, name, holding_name):
    """Move everything out of the old queue and delete it once it is empty: an old retry
    queue may still dead-letter into it by name meanwhile."""
    moved = 0
    while True:
        moved += move_messages(connection, name, holding_name)
        channel = connection.channel()
        try:
            channel.queue_delete(name, if_empty=True)
            return moved
        except amqp.exceptions.PreconditionFailed:
            continue  # something arrived since: move it too
        finally:
            close_quietly(channel)


def unbind(connection, queue):
    if queue.exchange is not None and queue.exchange.name:
        connection.default_channel.queue_unbind(queue.name, queue.exchange.name, queue.routing_key)


def queue_state(connection, queue):
    """``missing``, ``quorum`` (declares as the topology says), ``classic`` (refused: the old
    kind, with no consumers) or ``busy`` (the old kind, being consumed)."""
    channel = connection.channel()
    try:
        _, _, consumers = channel.queue_declare(queue.name, passive=True)
    except amqp.exceptions.NotFound:
        return "missing"
    finally:
        close_quietly(channel)
    channel = connection.channel()
    try:
        queue(channel).declare()
        return "quorum"
    except amqp.exceptions.PreconditionFailed:
        return "busy" if consumers else "classic"
    finally:
        close_quietly(channel)


def exists(connection, name):
    channel = connection.channel()
    try:
        channel.queue_declare(name, passive=True)
        return True
    except amqp.exceptions.NotFound:
        return False
    finally:
        close_quietly(channel)


def move_messages(connection, source, target):
    """Move every message from ``source`` to ``target`` (default exchange), byte for byte, each
    acknowledged only once the broker has confirmed its copy. Returns how many were moved."""
    taking = connection.channel()
    taking.auto_decode = False  # the body exactly as it was published, whatever its encoding
    publishing = connection.channel()
    moved = 0
    try:
        while True:
            message = taking.basic_get(source, no_ack=False)
            if message is None:
                return moved
            publishing.basic_publish_confirm(amqp.Message(message.body, **message.properties),
                                             exchange="", routing_key=target, mandatory=True)
            taking.basic_ack(message.delivery_tag)
            moved += 1
    finally:
        close_quietly(publishing)
        close_quietly(taking)


def close_quietly(channel):
    try:
        channel.close()
    except Exception:  # a channel the broker closed (the refused declaration) is gone already
        pass
