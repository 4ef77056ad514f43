import pytest
from nameko.containers import ServiceContainer

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.routing.service import RoutingService
from wangge import topology
from wangge.reliable import ReliableEventHandler

from services.care.service import CareService
from services.study.service import StudyService

SERVICES = [IntakeService, RoutingService, NotifyService, StudyService, CareService]


def event_handlers(container):
    return [e for e in container.entrypoints if isinstance(e, ReliableEventHandler)]


@pytest.mark.parametrize("service_cls", SERVICES)
def test_every_event_handler_has_its_queue_declared_up_front(service_cls):
    declared = {(s.source, s.event_type, s.service, s.method) for s in topology.SUBSCRIPTIONS}
    container = ServiceContainer(service_cls, {"AMQP_URI": "memory://"})
    for handler in event_handlers(container):
        assert (handler.source_service, handler.event_type, service_cls.name, handler.method_name) in declared


@pytest.mark.parametrize("service_cls", SERVICES)
def test_declared_queue_matches_the_one_nameko_declares(service_cls):
    # kombu's in-memory transport: setup() declares without a broker
    container = ServiceContainer(service_cls, {"AMQP_URI": "memory://"})
    for handler in event_handlers(container):
        handler.setup()
        subscription = next(s for s in topology.SUBSCRIPTIONS if s.method == handler.method_name)
        ours = topology.event_queue(subscription)
        assert ours.name == handler.queue.name
        assert (ours.durable, ours.auto_delete, ours.exclusive) == (handler.queue.durable, handler.queue.auto_delete, handler.queue.exclusive)
        assert ours.exchange.name == handler.queue.exchange.name and ours.routing_key == handler.queue.routing_key
        # a declaration with other arguments than the queue has is refused by the broker
        assert ours.queue_arguments == handler.queue.queue_arguments


def test_every_consumed_queue_has_a_retry_queue_that_returns_to_it():
    queues = {q.name: q for q in topology.all_queues()}
    for consumed in topology.consumed_queues():
        retry = queues[topology.retry_queue_name(consumed.name)]
        assert retry.queue_arguments["x-dead-letter-routing-key"] == consumed.name


def test_every_consumed_queue_is_a_quorum_queue_whose_dead_letters_reach_its_consumers_dead_letter_queue():
    dead_letter_queues = {q.name for q in topology.all_queues() if q.name.endswith(".dead")}
    for consumed in topology.consumed_queues() + topology.outbound_queues():
        arguments = consumed.queue_arguments
        assert arguments["x-queue-type"] == "quorum"
        assert arguments["x-delivery-limit"] == topology.DELIVERY_LIMIT
        assert arguments["x-dead-letter-routing-key"] in dead_letter_queues
        # at-least-once dead lettering: the broker keeps a message until the dead-letter queue confirmed it
        assert (arguments["x-dead-letter-strategy"], arguments["x-overflow"]) == ("at-least-once", "reject-publish")
    inbound = topology.inbound_queue().queue_arguments["x-dead-letter-routing-key"]
    assert inbound == topology.INBOUND_DEAD_LETTER_QUEUE


def test_retry_and_dead_letter_queues_are_quorum_queues_too():
    for queue in topology.all_queues():
        assert queue.queue_arguments["x-queue-type"] == "quorum", queue.name
