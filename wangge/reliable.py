"""The one retry and dead-letter mechanism every service uses.

Left alone, nameko acknowledges (and so loses) the message of an event handler
that raises, ``requeue_on_error`` redelivers a poison message forever, and kombu
acknowledges a body it cannot decode after logging it. Here instead:

* a handler that raises is retried through a retry queue, after a delay that
  doubles with each attempt, up to ``RETRY.MAX_ATTEMPTS`` (RabbitMQ expires
  per-message TTLs only at the head of a queue, so a short delay may wait behind
  a longer one; the delay is a minimum, and nothing is lost);
* a message that cannot succeed (an undecodable body, a failed validation, a
  :class:`PoisonMessage`) or has used its attempts goes to the service's
  dead-letter queue with the reason in its headers;
* the original is acknowledged only after its retry or dead letter is
  confirmed by the broker, so a crash in between redelivers rather than loses it.

``wangge-admin dead-letters list|replay`` reads and replays a dead-letter queue.
"""
import json
import logging
import uuid
from datetime import datetime, timezone
from functools import partial

import amqp.exceptions
import eventlet
import kombu.exceptions
import pymongo.errors
from kombu import Connection
from marshmallow import ValidationError
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler
from nameko.messaging import Consumer

from wangge import amqp_decoding, metrics, topology
from wangge.amqp_consumer import ResilientQueueConsumer
from wangge.logs import short_error

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-wangge-attempts"
REASON_HEADER = "x-wangge-reason"
QUEUE_HEADER = "x-wangge-queue"
SERVICE_HEADER = "x-wangge-service"
FAILED_AT_HEADER = "x-wangge-failed-at"
# Operators address a dead letter by this id (not every message has a message_id).
DEAD_LETTER_ID_HEADER = "x-wangge-dead-letter-id"
# Retries forced by an outage of the store or broker: they do not use up attempts.
OUTAGE_RETRIES_HEADER = "x-wangge-outage-retries"
# Set when a message's own properties could not be sent again and were dropped.
DROPPED_HEADER = "x-wangge-dropped"
WANGGE_HEADERS = (
    ATTEMPTS_HEADER, REASON_HEADER, QUEUE_HEADER, SERVICE_HEADER, FAILED_AT_HEADER, DEAD_LETTER_ID_HEADER,
    OUTAGE_RETRIES_HEADER, DROPPED_HEADER,
)

DEFAULT_RETRY = {"MAX_ATTEMPTS": 5, "DELAY_SECONDS": 2.0, "MAX_DELAY_SECONDS": 300.0}


# A failure of these is the infrastructure's, not the message's.
OUTAGE_ERRORS = (
    pymongo.errors.ConnectionFailure,
    kombu.exceptions.OperationalError,
    amqp.exceptions.ConnectionError,
    ConnectionError,
    TimeoutError,
)

# Pause before handing back a message that could not be moved, doubling while
# moving keeps failing, so a broker in trouble is not hammered in a tight loop.
SETTLE_BACKOFF_SECONDS = (0.5, 30.0)


class PoisonMessage(Exception):
    """The message itself is wrong: retrying cannot help."""


def describe_failure(exc):
    if isinstance(exc, ValidationError):
        return "invalid message: " + json.dumps(exc.messages, ensure_ascii=False, sort_keys=True)
    if isinstance(exc, PoisonMessage):
        return str(exc)
    return short_error(exc)


def retry_delay(attempt, policy):
    """Seconds to wait before attempt ``attempt + 1``: doubling, capped."""
    delay = float(policy["DELAY_SECONDS"]) * (2 ** (attempt - 1))
    return min(delay, float(policy["MAX_DELAY_SECONDS"]))


def is_retriable(exc):
    # RecursionError: a payload nested too deeply fails the same way every time.
    return not isinstance(exc, (ValidationError, PoisonMessage, RecursionError))


def is_outage(exc):
    return isinstance(exc, OUTAGE_ERRORS)


def _counted_header(message, header):
    """A count we wrote on a message coming back from a retry queue (the default
    exchange); the same header set by a sender on a new message is not trusted."""
    if (message.delivery_info or {}).get("exchange"):
        return 0
    try:
        return max(int((message.headers or {}).get(header, 0)), 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def previous_attempts(message):
    """Attempts so far, as counted by our retry queue."""
    return _counted_header(message, ATTEMPTS_HEADER)


def raw_body(message):
    # py-amqp gives a message without a body the str '' rather than bytes.
    body = message.body
    return body if isinstance(body, bytes) else str(body or "").encode("utf-8", "surrogateescape")


def republish_properties(message):
    """The properties of ``message`` worth keeping when it is moved to another
    queue; text that is not UTF-8 is left behind (the reason names it)."""
    def sendable(value):
        return value is not None and (not isinstance(value, str) or amqp_decoding.is_utf8_text(value))

    properties = {
        "content_type": message.content_type if sendable(message.content_type) and message.content_type else "application/octet-stream",
        "content_encoding": message.content_encoding if sendable(message.content_encoding) and message.content_encoding else "binary",
    }
    for key in ("message_id", "correlation_id", "timestamp", "type", "app_id"):
        value = message.properties.get(key)
        if sendable(value):
            properties[key] = value
    return properties


class RawMessageQueueConsumer(ResilientQueueConsumer):
    """Hands providers the undecoded message, so that a body kombu cannot decode
    reaches our dead-letter queue instead of being logged and acknowledged."""

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(
                queues=[provider.queue],
                on_message=partial(self.handle_raw_message, provider),
                accept=self.accept,
            )
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def handle_raw_message(self, provider, message):
        ident = f"{type(provider).__name__}.handle_raw_message[{message.delivery_info['routing_key']}]"
        self.container.spawn_managed_thread(partial(provider.handle_raw_message, message), identifier=ident)


class RetryOrDeadLetter:
    """Failure policy for a nameko ``Consumer`` entrypoint (mixed in first)."""

    queue_consumer = RawMessageQueueConsumer()
    dead_letter_queue_name = None  # default: wangge.<service>.dead

    # Every failure is handled here (retried or dead-lettered) with one log line of
    # ours; wangge.logs drops nameko's own traceback of the same failure.
    logs_own_failures = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._failed_moves = 0

    @property
    def retry_policy(self):
        return {**DEFAULT_RETRY, **(self.container.config.get("RETRY") or {})}

    @property
    def dead_letters(self):
        return self.dead_letter_queue_name or topology.dead_letter_queue_name(self.container.service_name)

    def setup(self):
        super().setup()
        # nameko builds an event handler's queue without arguments: give it the quorum
        # arguments the topology declares it with (a classic declaration of a quorum
        # queue is refused), and a queue the topology does not know the same kind.
        known = topology.consumed_queue_named(self.queue.name)
        self.queue.queue_arguments = dict(known.queue_arguments) if known else topology.consumed_queue_arguments(self.dead_letters)
        with Connection(self.container.config["AMQP_URI"]) as connection:
            channel = connection.default_channel
            topology.retry_queue(self.queue.name)(channel).declare()
            topology.dead_letter_queue(self.dead_letters)(channel).declare()

    def decode(self, message):
        """The body as the handler receives it; raise ``PoisonMessage`` if it cannot be."""
        return message.decode()

    def handle_raw_message(self, message):
        try:
            unreadable = amqp_decoding.unreadable_parts(message)
            if unreadable:
                raise PoisonMessage("unreadable message: " + "; ".join(unreadable))
            body = self.decode(message)
        except Exception as exc:
            # Whatever fails before the handler is the message's own fault: any
            # exception escaping this thread would stop the whole service.
            if not isinstance(exc, PoisonMessage):
                exc = PoisonMessage(f"undecodable body ({message.content_type}): {short_error(exc)}")
            self.settle(message, exc)
            return
        self.handle_message(body, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        else:
            self.settle(message, exc_info[1])

    def settle(self, message, exc):
        """Move a failed message to its retry queue or the dead-letter queue, then ack it.
        Never raises: it runs inside nameko's result handling, where an exception
        would kill the container and leave the message to kill the next one."""
        try:
            reason = describe_failure(exc)
            policy = self.retry_policy
            if is_outage(exc):
                outages = _counted_header(message, OUTAGE_RETRIES_HEADER) + 1
                self.publish_retry(message, previous_attempts(message), reason, retry_delay(outages, policy),
                                   {OUTAGE_RETRIES_HEADER: outages})
            elif is_retriable(exc) and previous_attempts(message) + 1 < int(policy["MAX_ATTEMPTS"]):
                attempts = previous_attempts(message) + 1
                self.publish_retry(message, attempts, reason, retry_delay(attempts, policy))
            else:
                self.publish_dead_letter(message, previous_attempts(message) + 1, reason)
        except Exception as move_error:
            # Broker trouble: hand the message back to be redelivered rather than
            # lose it, after a pause that grows while moving keeps failing.
            self._failed_moves += 1
            first, longest = SETTLE_BACKOFF_SECONDS
            pause = min(first * 2 ** (self._failed_moves - 1), longest)
            log.warning(
                "could not move failed message, handing it back",
                extra={"queue": self.queue.name, "reason": short_error(move_error), "retry_in_seconds": pause},
            )
            eventlet.sleep(pause)
            self.queue_consumer.requeue_message(message)
            return
        self._failed_moves = 0
        self.queue_consumer.ack_message(message)

    def _move(self, message, routing_key, headers, **options):
        publish = partial(Publisher(self.container.config["AMQP_URI"]).publish, raw_body(message),
                          exchange="", routing_key=routing_key, mandatory=True, **options)
        try:
            publish(headers={**(message.headers or {}), **headers}, **republish_properties(message))
        except OUTAGE_ERRORS:
            raise
        except Exception as exc:
            # Some property or header of the original cannot be sent again: keep
            # the body, drop the rest, and say so.
            publish(headers={**headers, DROPPED_HEADER: f"original properties and headers: {short_error(exc)}"},
                    content_type="application/octet-stream", content_encoding="binary")

    def publish_retry(self, message, attempts, reason, delay, extra_headers=None):
        log.warning(
            "handler failed, will retry",
            extra={"queue": self.queue.name, "attempt": attempts, "retry_in_seconds": delay, "reason": reason},
        )
        self._move(
            message,
            topology.retry_queue_name(self.queue.name),
            {ATTEMPTS_HEADER: attempts, REASON_HEADER: reason, **(extra_headers or {})},
            expiration=delay,
        )
        metrics.HANDLER_RETRIES.labels(self.container.service_name, self.queue.name).inc()

    def publish_dead_letter(self, message, attempts, reason):
        log.error(
            "message dead-lettered",
            extra={"queue": self.queue.name, "dead_letter_queue": self.dead_letters, "attempts": attempts, "reason": reason},
        )
        self._move(
            message,
            self.dead_letters,
            {
                ATTEMPTS_HEADER: attempts,
                REASON_HEADER: reason,
                QUEUE_HEADER: self.queue.name,
                SERVICE_HEADER: self.container.service_name,
                FAILED_AT_HEADER: datetime.now(timezone.utc).isoformat(),
                DEAD_LETTER_ID_HEADER: uuid.uuid4().hex,
            },
        )
        metrics.DEAD_LETTERED.labels(self.container.service_name, self.dead_letters).inc()


class ReliableEventHandler(RetryOrDeadLetter, EventHandler):
    """``@event_handler`` that retries and dead-letters instead of losing messages."""


class ReliableConsumer(RetryOrDeadLetter, Consumer):
    """``@consume`` with the same failure policy."""


amqp_decoding.install()

event_handler = ReliableEventHandler.decorator
consume = ReliableConsumer.decorator
