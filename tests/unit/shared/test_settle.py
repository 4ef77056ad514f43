"""The retry/dead-letter decision of a failed message, with the broker replaced."""
from types import SimpleNamespace

import pytest
from kombu import Queue
from marshmallow import ValidationError

from wangge.reliable import ATTEMPTS_HEADER, QUEUE_HEADER, REASON_HEADER, RetryOrDeadLetter


class FakeQueueConsumer:
    def __init__(self):
        self.acked, self.requeued = [], []

    def ack_message(self, message):
        self.acked.append(message)

    def requeue_message(self, message):
        self.requeued.append(message)


class Entrypoint(RetryOrDeadLetter):
    def __init__(self, broken_broker=False):
        self.queue = Queue("evt-routing-case_status_changed--intake.track_case_status")
        self.queue_consumer = FakeQueueConsumer()
        self.container = SimpleNamespace(service_name="intake", config={"RETRY": {"MAX_ATTEMPTS": 3, "DELAY_SECONDS": 2, "MAX_DELAY_SECONDS": 60}})
        self.broken_broker = broken_broker
        self.published = []

    def _publish(self, message, routing_key, headers, **options):
        if self.broken_broker:
            raise ConnectionError("broker gone")
        self.published.append({"routing_key": routing_key, "headers": headers, **options})


def message(headers=None, exchange="routing.events"):
    return SimpleNamespace(headers=headers or {}, delivery_info={"exchange": exchange, "routing_key": "case_status_changed"})


def test_first_failure_goes_to_the_retry_queue_then_is_acked():
    entrypoint, failed = Entrypoint(), message()
    entrypoint.settle(failed, TimeoutError("store slow"))
    [published] = entrypoint.published
    assert published["routing_key"].endswith(".retry")
    assert published["headers"][ATTEMPTS_HEADER] == 1 and published["expiration"] == 2
    assert entrypoint.queue_consumer.acked == [failed]


def test_attempts_counted_by_the_retry_queue_lead_to_the_dead_letter_queue():
    entrypoint = Entrypoint()
    entrypoint.settle(message({ATTEMPTS_HEADER: 2}, exchange=""), TimeoutError("store slow"))
    [published] = entrypoint.published
    assert published["routing_key"] == "wangge.intake.dead"
    assert published["headers"][ATTEMPTS_HEADER] == 3
    assert published["headers"][QUEUE_HEADER] == entrypoint.queue.name


@pytest.mark.parametrize("forged", [99, "abc", None, -5])
def test_an_attempt_count_set_by_a_sender_is_not_trusted(forged):
    entrypoint = Entrypoint()
    entrypoint.settle(message({ATTEMPTS_HEADER: forged}), TimeoutError("store slow"))
    assert entrypoint.published[0]["headers"][ATTEMPTS_HEADER] == 1


def test_invalid_message_is_dead_lettered_at_once_with_the_field_named():
    entrypoint = Entrypoint()
    entrypoint.settle(message(), ValidationError({"status": ["Must be one of: …"]}))
    [published] = entrypoint.published
    assert published["routing_key"] == "wangge.intake.dead"
    assert '"status"' in published["headers"][REASON_HEADER]


def test_when_the_broker_cannot_take_the_move_the_message_is_requeued_not_lost():
    entrypoint, failed = Entrypoint(broken_broker=True), message()
    entrypoint.settle(failed, TimeoutError("store slow"))  # must not raise
    assert entrypoint.queue_consumer.acked == []
    assert entrypoint.queue_consumer.requeued == [failed]
