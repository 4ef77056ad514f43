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

from kombu import Connection
from marshmallow import ValidationError
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler
from nameko.messaging import Consumer, QueueConsumer

from wangge import metrics, topology

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-wangge-attempts"
REASON_HEADER = "x-wangge-reason"
QUEUE_HEADER = "x-wangge-queue"
SERVICE_HEADER = "x-wangge-service"
FAILED_AT_HEADER = "x-wangge-failed-at"
# Operators address a dead letter by this id (not every message has a message_id).
DEAD_LETTER_ID_HEADER = "x-wangge-dead-letter-id"
WANGGE_HEADERS = (ATTEMPTS_HEADER, REASON_HEADER, QUEUE_HEADER, SERVICE_HEADER, FAILED_AT_HEADER, DEAD_LETTER_ID_HEADER)

DEFAULT_RETRY = {"MAX_ATTEMPTS": 5, "DELAY_SECONDS": 2.0, "MAX_DELAY_SECONDS": 300.0}


class PoisonMessage(Exception):
    """The message itself is wrong: retrying cannot help."""


def describe_failure(exc):
    if isinstance(exc, ValidationError):
        return "invalid message: " + json.dumps(exc.messages, ensure_ascii=False, sort_keys=True)
    if isinstance(exc, PoisonMessage):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def retry_delay(attempt, policy):
    """Seconds to wait before attempt ``attempt + 1``: doubling, capped."""
    delay = float(policy["DELAY_SECONDS"]) * (2 ** (attempt - 1))
    return min(delay, float(policy["MAX_DELAY_SECONDS"]))


def is_retriable(exc):
    return not isinstance(exc, (ValidationError, PoisonMessage))


def previous_attempts(message):
    """Attempts so far, as counted by our retry queue. Only a message coming back
    from a retry queue (the default exchange) carries a count we wrote; a header
    a sender set on a new message is not trusted."""
    if (message.delivery_info or {}).get("exchange"):
        return 0
    try:
        return max(int((message.headers or {}).get(ATTEMPTS_HEADER, 0)), 0)
    except (TypeError, ValueError):
        return 0


def republish_properties(message):
    """The properties of ``message`` worth keeping when it is moved to another queue."""
    properties = {
        "content_type": message.content_type or "application/octet-stream",
        "content_encoding": message.content_encoding or "binary",
    }
    for key in ("message_id", "correlation_id", "timestamp", "type", "app_id"):
        value = message.properties.get(key)
        if value is not None:
            properties[key] = value
    return properties


class RawMessageQueueConsumer(QueueConsumer):
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

    @property
    def retry_policy(self):
        return {**DEFAULT_RETRY, **(self.container.config.get("RETRY") or {})}

    @property
    def dead_letters(self):
        return self.dead_letter_queue_name or topology.dead_letter_queue_name(self.container.service_name)

    def setup(self):
        super().setup()
        with Connection(self.container.config["AMQP_URI"]) as connection:
            channel = connection.default_channel
            topology.retry_queue(self.queue.name)(channel).declare()
            topology.dead_letter_queue(self.dead_letters)(channel).declare()

    def decode(self, message):
        """The body as the handler receives it; raise ``PoisonMessage`` if it cannot be."""
        try:
            return message.decode()
        except Exception as exc:
            raise PoisonMessage(f"undecodable body ({message.content_type}): {exc}") from exc

    def handle_raw_message(self, message):
        try:
            body = self.decode(message)
        except PoisonMessage as exc:
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
            attempts = previous_attempts(message) + 1
            reason = describe_failure(exc)
            policy = self.retry_policy
            if is_retriable(exc) and attempts < int(policy["MAX_ATTEMPTS"]):
                self.publish_retry(message, attempts, reason, retry_delay(attempts, policy))
            else:
                self.publish_dead_letter(message, attempts, reason)
        except Exception:
            # Broker trouble: leave the message to be redelivered rather than lose it.
            log.exception("could not move failed message", extra={"queue": self.queue.name})
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)

    def _publish(self, message, routing_key, headers, **options):
        Publisher(self.container.config["AMQP_URI"]).publish(
            message.body,
            exchange="",
            routing_key=routing_key,
            headers={**(message.headers or {}), **headers},
            mandatory=True,
            **republish_properties(message),
            **options,
        )

    def publish_retry(self, message, attempts, reason, delay):
        log.warning(
            "handler failed, will retry",
            extra={"queue": self.queue.name, "attempt": attempts, "retry_in_seconds": delay, "reason": reason},
        )
        self._publish(
            message,
            topology.retry_queue_name(self.queue.name),
            {ATTEMPTS_HEADER: attempts, REASON_HEADER: reason},
            expiration=delay,
        )
        metrics.HANDLER_RETRIES.labels(self.container.service_name, self.queue.name).inc()

    def publish_dead_letter(self, message, attempts, reason):
        log.error(
            "message dead-lettered",
            extra={"queue": self.queue.name, "dead_letter_queue": self.dead_letters, "attempts": attempts, "reason": reason},
        )
        self._publish(
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


event_handler = ReliableEventHandler.decorator
consume = ReliableConsumer.decorator
