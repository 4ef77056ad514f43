"""Every service rides out its broker going away: a full stop and start of the
RabbitMQ node under load, and a connection reset under a message in hand.

The node is a private one (tests/support/private_broker.py): the machine's
shared broker is never stopped. Both tests failed before the consumer settled
deliveries on lost connections quietly (wangge/amqp_consumer.py): the first with
services exiting and hundreds of requests left queued, the second with the
container stopped at its acknowledgement."""
import socket
import time
from contextlib import ExitStack

import pytest
from kombu import Connection, Queue
from nameko.containers import ServiceContainer
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer

from devstack.processes import http_ok
from tests.support.platform_under_load import (
    SERVICES, InboundLoad, Platform, everything_through, left_queued, tally,
)
from tests.support.polling import eventually
from tests.support.private_broker import BrokerUnavailable, private_broker, without_private_broker
from wangge import topology
from wangge.reliable import consume

pytestmark = pytest.mark.e2e

RATE = 10  # steady inbound requests a second, as an integrator's system sends them
BURST = 200  # sent just before the stop, so every service has messages in hand when the node goes
AWAY_SECONDS = 30
AFTER_SECONDS = 8  # steady load once the node is back
DRAIN_SECONDS = 240  # for the backlog, notices included, to clear afterwards on a loaded machine


@pytest.fixture(scope="module")
def broker():
    try:
        with private_broker() as node:
            yield node
    except BrokerUnavailable as exc:
        without_private_broker(exc)


def test_platform_rides_out_a_full_stop_and_start_of_its_broker_node(broker, mongo_uri, tmp_path):
    with ExitStack() as stack:
        platform = Platform(stack, broker, mongo_uri, tmp_path)
        grids = platform.load_county()

        load = InboundLoad(broker.amqp_uri, grids)
        load.start(RATE)
        eventually(lambda: platform.db("notify")["notifications"].count_documents({"status": "sent"}) >= 20, timeout=60)
        load.burst(BURST)

        # The node goes while the services are paused: when they resume, the messages
        # they have in hand are acknowledged on connections the broker has closed,
        # before they have read that it has (what under load used to kill a service).
        with platform.paused():
            broker.stop()
        stopped_at = time.monotonic()
        time.sleep(AWAY_SECONDS)
        during_outage = {"exited": platform.exited(), "confirmed": len(load.confirmed)}
        broker.start()
        back_at = time.monotonic()
        time.sleep(AFTER_SECONDS)
        load.stop()

        message_ids = [message_id for message_id, _ in load.confirmed]
        after_restart = [message_id for message_id, at in load.confirmed if at > back_at]
        try:
            figures = eventually(lambda: everything_through(platform, broker, message_ids),
                                 timeout=DRAIN_SECONDS, interval=1)
        except AssertionError:
            figures = tally(platform, broker, message_ids)
            pytest.fail(
                f"not every request came through: {figures}\nexited: {platform.exited()}, "
                f"during the outage: {during_outage}\n{platform.log_tails()}\n{platform.green_thread_stacks()}"
            )
        figures["drained_in_seconds"] = round(time.monotonic() - back_at, 1)
        figures["away_seconds"] = round(back_at - stopped_at, 1)
        figures["published_after_restart"] = len(after_restart)
        print(f"\nbroker restart under load: {figures}")

        # the same processes, still running, still answering
        assert during_outage["exited"] == {} and platform.exited() == {}, platform.log_tails()
        assert {name: service.process.pid for name, service in platform.services.items()} == platform.pids
        for service in platform.services.values():
            assert http_ok(service.url("/health")), service.name
        # once each, nothing lost
        assert figures["stored_twice"] == figures["stored_unasked"] == 0
        assert figures["cased_twice"] == 0
        assert figures["notified_twice"] == figures["delivered_twice"] == 0
        assert figures["sent"] == figures["notifications"] == figures["delivered"] == 2 * figures["published"]
        # consuming and publishing resumed: requests sent after the restart came all the way through,
        # every queue is consumed again, and nothing is left queued or dead-lettered
        assert figures["published_after_restart"] >= RATE
        assert left_queued(figures) == {}
        consumed = {queue.name for service in SERVICES for queue in topology.consumed_by(service)}
        assert {name for name in consumed if figures["left_on_broker"][name][1] == 0} == set()


# -- a connection reset under a message in hand ------------------------------------

RESET_QUEUE = "wangge.test.ack-after-reset"


class ConsumerLink(DependencyProvider):
    """Lets a handler cut its own consumer's connection, as a broker that goes
    away while the message is in hand does."""

    def get_dependency(self, worker_ctx):
        def cut():
            for extension in self.container.subextensions:
                if isinstance(extension, QueueConsumer):
                    for consumer in extension._consumers.values():
                        consumer.channel.connection.transport.sock.shutdown(socket.SHUT_RDWR)
        return cut


class AckAfterReset:
    name = "ack_after_reset"
    link = ConsumerLink()
    handled = []

    @consume(queue=Queue(RESET_QUEUE, durable=True))
    def take(self, body):
        self.handled.append(body)
        if body == "cut" and self.handled.count("cut") == 1:
            self.link()  # the acknowledgement that follows finds the connection gone


def test_consumer_survives_a_connection_reset_before_its_ack_and_gets_the_message_again(broker):
    AckAfterReset.handled.clear()
    container = ServiceContainer(AckAfterReset, {"AMQP_URI": broker.amqp_uri, "max_workers": 2})
    container.start()
    try:
        with Connection(broker.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            producer = connection.Producer(serializer="json")
            producer.publish("cut", routing_key=RESET_QUEUE, delivery_mode=2, retry=True)
            eventually(lambda: AckAfterReset.handled.count("cut") == 2 or container._died.ready(), timeout=20)
            assert not container._died.ready(), "the service stopped"
            producer.publish("after", routing_key=RESET_QUEUE, delivery_mode=2, retry=True)
            eventually(lambda: "after" in AckAfterReset.handled, timeout=20)
        assert AckAfterReset.handled == ["cut", "cut", "after"]
    finally:
        container.stop()
    with Connection(broker.amqp_uri) as connection:
        _, left, _ = connection.default_channel.queue_declare(RESET_QUEUE, passive=True)
    assert left == 0
