"""A three-node RabbitMQ cluster on this machine loses the node that leads the
inbound queue under a steady load: every request is still stored once, cased once
and notified once, by the same service processes, and the node rejoins.

The nodes are the test's own (tests/support/private_broker.py): the machine's shared
broker is never touched. Every queue is a quorum queue replicated on all three nodes;
the services and the publisher are given all three nodes' URIs and fail over."""
import time
from contextlib import ExitStack

import pytest

from devstack.processes import http_ok
from tests.support.platform_under_load import InboundLoad, Platform, everything_through, left_queued, tally
from tests.support.polling import eventually
from tests.support.private_broker import BrokerUnavailable, private_cluster, without_private_broker
from wangge import topology

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

RATE = 5  # steady inbound requests a second: below what three replicating nodes on two cores take
AWAY_SECONDS = 20  # the leader's node is down this long, the load going on
AFTER_SECONDS = 8  # steady load once it is back
DRAIN_SECONDS = 300  # for the backlog, notices included, to clear on a loaded machine


@pytest.fixture(scope="module")
def cluster():
    try:
        with private_cluster(3) as nodes:
            yield nodes
    except BrokerUnavailable as exc:
        without_private_broker(exc)


def test_no_request_is_lost_or_doubled_when_the_inbound_queues_leader_node_stops(cluster, mongo_uri, tmp_path):
    with ExitStack() as stack:
        platform = Platform(stack, cluster, mongo_uri, tmp_path)
        grids = platform.load_county()
        assert cluster.members_of(topology.INBOUND_QUEUE_NAME).count("@") == 3  # replicated on every node

        load = InboundLoad(cluster.amqp_uri, grids)
        load.start(RATE)
        eventually(lambda: platform.db("notify")["notifications"].count_documents({"status": "sent"}) >= 20, timeout=90)

        leader = cluster.node_named(cluster.leader_of(topology.INBOUND_QUEUE_NAME))
        leader.stop()
        stopped_at = time.monotonic()

        def new_leader():
            name = cluster.leader_of(topology.INBOUND_QUEUE_NAME)
            return name if name and name != leader.node else None

        new_leader_name = eventually(new_leader, timeout=120)
        time.sleep(max(0.0, AWAY_SECONDS - (time.monotonic() - stopped_at)))
        during_outage = {"exited": platform.exited(), "confirmed": len(load.confirmed)}
        leader.start()  # the node remembers its cluster and rejoins it
        back_at = time.monotonic()
        eventually(lambda: cluster.running_nodes() == 3, timeout=240)
        time.sleep(AFTER_SECONDS)
        load.stop()

        message_ids = [message_id for message_id, _ in load.confirmed]
        published_while_away = [message_id for message_id, at in load.confirmed if stopped_at < at < back_at]
        try:
            figures = eventually(lambda: everything_through(platform, cluster, message_ids), timeout=DRAIN_SECONDS, interval=1)
        except AssertionError:
            figures = tally(platform, cluster, message_ids)
            pytest.fail(f"not every request came through: {figures}\nexited: {platform.exited()}, "
                        f"during the outage: {during_outage}\n{platform.log_tails()}\n{platform.green_thread_stacks()}")
        figures["published_while_the_node_was_away"] = len(published_while_away)
        figures["drained_in_seconds"] = round(time.monotonic() - back_at, 1)
        print(f"\ncluster losing the inbound queue's leader {leader.node} (now {new_leader_name}): {figures}")

        # the same processes, never restarted, still answering
        assert during_outage["exited"] == {} and platform.exited() == {}, platform.log_tails()
        assert {name: service.process.pid for name, service in platform.services.items()} == platform.pids
        for service in platform.services.values():
            assert http_ok(service.url("/health")), service.name
        # requests kept coming in while the node was away, and none was lost or doubled
        assert figures["published_while_the_node_was_away"] >= RATE
        assert figures["stored_twice"] == figures["stored_unasked"] == 0
        assert figures["cased_twice"] == 0
        assert figures["notified_twice"] == figures["delivered_twice"] == 0
        assert figures["sent"] == figures["notifications"] == figures["delivered"] == 2 * figures["published"]
        assert left_queued(figures) == {}
        # the node is back in the cluster, a member of the queue again
        assert leader.node in cluster.members_of(topology.INBOUND_QUEUE_NAME)
