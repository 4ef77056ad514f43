"""The retry/dead-letter decision of a failed message, with the broker replaced."""
from types import SimpleNamespace

import pytest
from kombu import Queue
from marshmallow import ValidationError
from pymongo.errors import ServerSelectionTimeoutError

from wangge import reliable
from wangge.reliable import ATTEMPTS_HEADER, OUTAGE_RETRIES_HEADER, QUEUE_HEADER, REASON_HEADER, RetryOrDeadLetter


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
        self._failed_moves = 0

    def _move(self, message, routing_key, headers, **options):
        if self.broken_broker:
            raise ConnectionError("broker gone")
        self.published.append({"routing_key": routing_key, "headers": headers, **options})


def message(headers=None, exchange="routing.events"):
    return SimpleNamespace(headers=headers or {}, delivery_info={"exchange": exchange, "routing_key": "case_status_changed"})


def test_first_failure_goes_to_the_retry_queue_then_is_acked():
    entrypoint, failed = Entrypoint(), message()
    entrypoint.settle(failed, KeyError("handler bug"))
    [published] = entrypoint.published
    assert published["routing_key"].endswith(".retry")
    assert published["headers"][ATTEMPTS_HEADER] == 1 and published["expiration"] == 2
    assert entrypoint.queue_consumer.acked == [failed]


def test_attempts_counted_by_the_retry_queue_lead_to_the_dead_letter_queue():
    entrypoint = Entrypoint()
    entrypoint.settle(message({ATTEMPTS_HEADER: 2}, exchange=""), KeyError("handler bug"))
    [published] = entrypoint.published
    assert published["routing_key"] == "wangge.intake.dead"
    assert published["headers"][ATTEMPTS_HEADER] == 3
    assert published["headers"][QUEUE_HEADER] == entrypoint.queue.name


@pytest.mark.parametrize("forged", [99, "abc", None, -5])
def test_an_attempt_count_set_by_a_sender_is_not_trusted(forged):
    entrypoint = Entrypoint()
    entrypoint.settle(message({ATTEMPTS_HEADER: forged}), KeyError("handler bug"))
    assert entrypoint.published[0]["headers"][ATTEMPTS_HEADER] == 1


def test_invalid_message_is_dead_lettered_at_once_with_the_field_named():
    entrypoint = Entrypoint()
    entrypoint.settle(message(), ValidationError({"status": ["Must be one of: …"]}))
    [published] = entrypoint.published
    assert published["routing_key"] == "wangge.intake.dead"
    assert '"status"' in published["headers"][REASON_HEADER]


def test_when_the_broker_cannot_take_the_move_the_message_is_requeued_not_lost():
    entrypoint, failed = Entrypoint(broken_broker=True), message()
    entrypoint.settle(failed, KeyError("handler bug"))  # must not raise
    assert entrypoint.queue_consumer.acked == []
    assert entrypoint.queue_consumer.requeued == [failed]


def test_a_store_outage_retries_without_using_up_attempts():
    entrypoint = Entrypoint()
    outage = ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused, Timeout: 30s, Topology Description: <…>")
    entrypoint.settle(message({ATTEMPTS_HEADER: 2, OUTAGE_RETRIES_HEADER: 6}, exchange=""), outage)
    [published] = entrypoint.published
    assert published["routing_key"].endswith(".retry")  # not dead, though 2 + 1 attempts is the limit
    assert published["headers"][ATTEMPTS_HEADER] == 2
    assert published["headers"][OUTAGE_RETRIES_HEADER] == 7
    assert published["expiration"] == 60  # doubling with each outage retry, capped
    assert "Topology Description" not in published["headers"][REASON_HEADER]


def test_a_payload_nested_too_deeply_is_dead_lettered_at_once():
    entrypoint = Entrypoint()
    entrypoint.settle(message(), RecursionError("maximum recursion depth exceeded"))
    assert entrypoint.published[0]["routing_key"] == "wangge.intake.dead"


def test_moves_that_keep_failing_hand_messages_back_after_growing_pauses(monkeypatch):
    pauses = []
    monkeypatch.setattr(reliable.eventlet, "sleep", pauses.append)
    entrypoint = Entrypoint(broken_broker=True)
    for _ in range(10):
        entrypoint.settle(message(), KeyError("handler bug"))
    assert pauses == sorted(pauses) and pauses[0] > 0 and pauses[-1] == reliable.SETTLE_BACKOFF_SECONDS[1]
    assert len(entrypoint.queue_consumer.requeued) == 10
    entrypoint.broken_broker = False
    entrypoint.settle(message(), KeyError("handler bug"))
    assert entrypoint._failed_moves == 0
