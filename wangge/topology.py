"""Every exchange and queue of the platform, in one place.

Nameko publishes events with ``mandatory=False``: an event published while no
queue is bound to it is dropped without a word. So every queue a publisher
relies on is declared here, before anything publishes: by each service at
start (``wangge-service``), by ``wangge-admin topology declare``, and in the
RabbitMQ definitions generated from this module for production.
"""
import re
from dataclasses import dataclass

from kombu import Exchange, Queue

from wangge import events

INBOUND_EXCHANGE_NAME = "wangge.inbound"
INBOUND_QUEUE_NAME = "wangge.inbound.requests"
INBOUND_DEAD_LETTER_QUEUE = "wangge.inbound.dead"
INBOUND_ROUTING_PATTERN = "request.#"
INBOUND_CONSUMER = "intake"
# Results back to the systems that sent requests: routing publishes request.<source>.<status>;
# each system reads its own queue. Systems known up front; others' queues are declared
# when they are added.
OUTBOUND_EXCHANGE_NAME = "wangge.outbound"
OUTBOUND_PUBLISHER = "routing"
INTEGRATOR_SOURCES = ("hotline12345",)
# Results an integrator's consumer kept failing on, for the operators to look at.
OUTBOUND_DEAD_LETTER_QUEUE = "wangge.outbound.dead"

# Every queue is a quorum queue: replicated over the cluster's nodes, so a node that
# stops loses no message. A message handed back this many times without being settled
# (a consumer that crashes on it, again and again) is dead-lettered by the broker
# itself; failures a handler reports go through wangge.reliable's retry queues instead
# and do not count here.
DELIVERY_LIMIT = 20
QUORUM = {"x-queue-type": "quorum"}


def dead_lettering_into(queue_name):
    """Queue arguments sending what a quorum queue gives up on (over its delivery limit,
    or a retry whose time is up) to ``queue_name``, at least once: the broker keeps the
    message until the target queue has confirmed it (RabbitMQ 3.10+; needs reject-publish)."""
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue_name,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def consumed_queue_arguments(dead_letter_queue):
    """What every queue a consumer reads carries: quorum, a delivery limit, its dead letters' queue."""
    return {**QUORUM, "x-delivery-limit": DELIVERY_LIMIT, **dead_lettering_into(dead_letter_queue)}


@dataclass(frozen=True)
class Subscription:
    """One service's handler for another service's event."""

    source: str
    event_type: str
    service: str
    method: str

    @property
    def queue_name(self):
        # nameko's own naming for SERVICE_POOL handlers, so nameko tooling still reads it
        return f"evt-{self.source}-{self.event_type}--{self.service}.{self.method}"


SUBSCRIPTIONS = (
    Subscription("intake", events.REQUEST_RECEIVED, "routing", "open_case"),
    Subscription("routing", events.CASE_STATUS_CHANGED, "intake", "track_case_status"),
    # notify tells people about every case event; its queues exist before it
    # first runs, so nothing routing publishes meanwhile is lost.
    *(Subscription("routing", event_type, "notify", f"on_{event_type}") for event_type in events.CASE_EVENTS),
    *(Subscription("study", event_type, "notify", f"on_{event_type}") for event_type in events.STUDY_EVENTS),
    *(Subscription("care", event_type, "notify", f"on_{event_type}") for event_type in events.CARE_EVENTS),
)


def events_exchange(service_name):
    """Exactly the exchange nameko declares for a service's events."""
    return Exchange(f"{service_name}.events", type="topic", durable=True, delivery_mode=2)


def inbound_exchange():
    return Exchange(INBOUND_EXCHANGE_NAME, type="topic", durable=True, delivery_mode=2)


def outbound_exchange():
    return Exchange(OUTBOUND_EXCHANGE_NAME, type="topic", durable=True, delivery_mode=2)


def outbound_queue_name(source):
    return f"wangge.outbound.{source}"


def outbound_queue(source):
    """A system's results: every status of every request it sent."""
    return Queue(outbound_queue_name(source), exchange=outbound_exchange(), routing_key=f"request.{source}.*", durable=True,
                 queue_arguments=consumed_queue_arguments(OUTBOUND_DEAD_LETTER_QUEUE))


def outbound_queues():
    return [outbound_queue(source) for source in INTEGRATOR_SOURCES]


def outbound_dead_letter_queue():
    return dead_letter_queue(OUTBOUND_DEAD_LETTER_QUEUE)


def dead_letter_queue_name(service_name):
    return f"wangge.{service_name}.dead"


def retry_queue_name(queue_name):
    return f"{queue_name}.retry"


def event_queue(subscription):
    """The queue nameko's ``event_handler`` declares (same name, binding and flags),
    with the quorum arguments wangge.reliable gives its handlers' queues too, so
    declaring it early never conflicts with the consumer's own declaration."""
    return Queue(
        subscription.queue_name,
        exchange=events_exchange(subscription.source),
        routing_key=subscription.event_type,
        durable=True,
        auto_delete=False,
        exclusive=False,
        queue_arguments=consumed_queue_arguments(dead_letter_queue_name(subscription.service)),
    )


def inbound_queue():
    return Queue(
        INBOUND_QUEUE_NAME,
        exchange=inbound_exchange(),
        routing_key=INBOUND_ROUTING_PATTERN,
        durable=True,
        queue_arguments=consumed_queue_arguments(INBOUND_DEAD_LETTER_QUEUE),
    )


def retry_queue(queue_name):
    """Nobody consumes a retry queue: a message waits out its per-message TTL
    there and is dead-lettered straight back into the queue it came from."""
    return Queue(retry_queue_name(queue_name), durable=True, queue_arguments={**QUORUM, **dead_lettering_into(queue_name)})


def dead_letter_queue(name):
    return Queue(name, durable=True, queue_arguments=dict(QUORUM))


def consumed_queues():
    """Every queue a service consumes from (each has a retry queue beside it)."""
    return [inbound_queue()] + [event_queue(s) for s in SUBSCRIPTIONS]


def all_queues():
    queues = []
    for queue in consumed_queues():
        queues += [queue, retry_queue(queue.name)]
    dead = {INBOUND_DEAD_LETTER_QUEUE} | {dead_letter_queue_name(s.service) for s in SUBSCRIPTIONS}
    queues += [dead_letter_queue(name) for name in sorted(dead)]
    return queues + outbound_queues() + [outbound_dead_letter_queue()]


def consumed_queue_named(name):
    """The declared form of a queue some service consumes, or None for a queue the topology does not know."""
    return next((queue for queue in consumed_queues() if queue.name == name), None)


def all_exchanges():
    sources = sorted({s.source for s in SUBSCRIPTIONS})
    return [inbound_exchange(), outbound_exchange()] + [events_exchange(name) for name in sources]


def consumed_by(service_name):
    queues = [event_queue(s) for s in SUBSCRIPTIONS if s.service == service_name]
    return ([inbound_queue()] if service_name == INBOUND_CONSUMER else []) + queues


def dead_letter_queues_of(service_name):
    return [dead_letter_queue_name(service_name)] + ([INBOUND_DEAD_LETTER_QUEUE] if service_name == INBOUND_CONSUMER else [])


def queues_needed_by(service_name):
    """What a service must find in place: the queues it consumes (with their retry
    queues), its dead-letter queues, and every queue bound to the events it
    publishes, so that nothing it publishes finds no queue."""
    own = consumed_by(service_name)
    downstream = [event_queue(s) for s in SUBSCRIPTIONS if s.source == service_name]
    queues = []
    for queue in own:
        queues += [queue, retry_queue(queue.name)]
    queues += downstream
    queues += [dead_letter_queue(name) for name in dead_letter_queues_of(service_name)]
    if service_name == OUTBOUND_PUBLISHER:
        queues += outbound_queues() + [outbound_dead_letter_queue()]
    return queues


def declare_topology(connection, service_name=None):
    """Declare (idempotently) what ``service_name`` needs, or everything."""
    channel = connection.default_channel
    queues = all_queues() if service_name is None else queues_needed_by(service_name)
    exchanges = {q.exchange.name: q.exchange for q in queues if q.exchange is not None and q.exchange.name}
    if service_name is not None:
        exchanges.setdefault(f"{service_name}.events", events_exchange(service_name))
    for exchange in (all_exchanges() if service_name is None else exchanges.values()):
        exchange(channel).declare()
    for queue in queues:
        queue(channel).declare()


def _names(names):
    return "^(" + "|".join(re.escape(name) for name in sorted(set(names))) + ")$"


def users_and_permissions():
    """(user, permissions) for every account the platform's broker needs."""
    return [(name, permissions_for(name)) for name in SERVICE_USERS] + [("external", EXTERNAL_PERMISSIONS)]


def permissions_for(service_name):
    """RabbitMQ permissions for a service's own user: declare and bind what it
    needs, publish to its events exchange and (for retries and dead letters) the
    default exchange, consume its own queues."""
    needed = queues_needed_by(service_name)
    own = [q.name for q in consumed_by(service_name)]
    sources = {q.exchange.name for q in consumed_by(service_name)}
    published = f"{service_name}.events"
    if service_name == OUTBOUND_PUBLISHER:
        sources.add(OUTBOUND_EXCHANGE_NAME)  # declared, bound to its systems' queues and published to
    touched = [q.name for q in needed] + list(sources) + [published]
    return {
        "configure": _names(touched),
        "write": _names(touched + ["amq.default"]),
        "read": _names(own + list(sources) + [published] + [q.name for q in needed]),
    }


# Systems outside the platform may publish requests and read their results, nothing else;
# the shared account only under the sources known up front (each other system has its own).
EXTERNAL_PERMISSIONS = {"configure": "^$", "write": _names([INBOUND_EXCHANGE_NAME]),
                        "read": _names(q.name for q in outbound_queues())}
EXTERNAL_TOPIC_PERMISSIONS = {"exchange": INBOUND_EXCHANGE_NAME, "write": _names(f"request.{source}" for source in INTEGRATOR_SOURCES),
                              "read": "^$"}
SERVICE_USERS = ("intake", "routing", "notify", "study", "care")


def rabbitmq_definitions(vhost="/"):
    """The same topology as a RabbitMQ definitions document (``deploy/rabbitmq``),
    with a user per service and an ``external`` user for other systems. The users
    carry no password: ``wangge-admin rabbitmq setup`` sets them from the environment."""
    exchanges = [
        {"name": e.name, "vhost": vhost, "type": e.type, "durable": True,
         "auto_delete": False, "internal": False, "arguments": {}}
        for e in all_exchanges()
    ]
    queues = [
        {"name": q.name, "vhost": vhost, "durable": True, "auto_delete": False,
         "arguments": dict(q.queue_arguments or {})}
        for q in all_queues()
    ]
    bindings = [
        {"source": q.exchange.name, "vhost": vhost, "destination": q.name,
         "destination_type": "queue", "routing_key": q.routing_key, "arguments": {}}
        for q in consumed_queues() + outbound_queues()
    ]
    users = [{"name": name, "password_hash": "", "tags": ""} for name, _ in users_and_permissions()]
    permissions = [{"user": name, "vhost": vhost, **allowed} for name, allowed in users_and_permissions()]
    topic_permissions = [{"user": "external", "vhost": vhost, **EXTERNAL_TOPIC_PERMISSIONS}]
    return {"vhosts": [{"name": vhost}], "users": users, "permissions": permissions, "topic_permissions": topic_permissions,
            "exchanges": exchanges, "queues": queues, "bindings": bindings}
