from wangge import quorum_migration, topology


def test_a_retry_waiting_in_a_holding_queue_still_goes_on_to_its_queue_when_its_time_is_up():
    for queue in topology.all_queues():
        holding = quorum_migration.holding_queue(queue)
        arguments = dict(queue.queue_arguments)
        arguments.pop("x-delivery-limit", None)  # nobody consumes a holding queue
        assert holding.queue_arguments == arguments
        assert (holding.exchange, holding.routing_key) == (queue.exchange, queue.routing_key)
    retry = quorum_migration.holding_queue(topology.retry_queue(topology.INBOUND_QUEUE_NAME))
    assert retry.queue_arguments["x-dead-letter-routing-key"] == topology.INBOUND_QUEUE_NAME


def test_queues_are_migrated_after_the_queues_they_send_messages_to_by_name():
    order = [queue.name for queue in quorum_migration.queues_to_migrate(["city_hotline"])]
    for consumed in topology.consumed_queues():
        retry = topology.retry_queue_name(consumed.name)
        dead = consumed.queue_arguments["x-dead-letter-routing-key"]
        assert order.index(dead) < order.index(retry) < order.index(consumed.name)
    assert "wangge.outbound.city_hotline" in order
