"""Nameko's queue consumer, made to ride out a broker that goes away.

When a broker node stops or a connection is reset, a worker that finishes just
then acknowledges on a socket the broker has already dropped. nameko 2.14's
``QueueConsumer`` catches only py-amqp's ``ConnectionError`` there; the
``ConnectionResetError`` or ``BrokenPipeError`` the socket raises escapes from
the worker's result handling, and nameko kills the whole container. Raising
gains nothing: a delivery whose connection is gone is back in its queue already,
and comes again (flagged redelivered) once the consumer has reconnected; every
handler is idempotent for that reason.

Each pass of the consumer's loop (at least once a second while it waits for
deliveries) and each attempt to connect is noted, so ``/health/live`` can tell a
consumer blocked inside a call to a broker node that never answers from one that
is idle or reconnecting; see wangge/operations.py.

kombu's ``ConsumerMixin`` reconnects without limit, but backs off to 30 s
between attempts, so a consumer could stay away half a minute after its broker
is back. Here the pace comes from the connection's transport options (nameko's
``TRANSPORT_OPTIONS``, by default 2 s, then 1 s more per attempt, at most 5 s).
"""
import logging
import time
from contextlib import contextmanager

import amqp
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)

# What settling a delivery meets when its connection or channel went away under it.
LOST_DELIVERY_ERRORS = amqp.Connection.connection_errors + amqp.Connection.channel_errors
RECONNECT_PACE_OPTIONS = ("interval_start", "interval_step", "interval_max")


class ResilientQueueConsumer(QueueConsumer):
    def __init__(self):
        super().__init__()
        # the last pass of the loop that waits for deliveries, or attempt to (re)connect
        # and set the consumers up: a consumer doing neither is blocked inside a call
        self.last_pass = time.monotonic()

    def start(self):
        self.last_pass = time.monotonic()  # a slow set-up of the service's is not a stuck consumer
        super().start()

    def on_iteration(self):
        self.last_pass = time.monotonic()
        super().on_iteration()

    def on_connection_error(self, exc, interval):
        self.last_pass = time.monotonic()
        super().on_connection_error(exc, interval)

    def seconds_since_last_pass(self):
        return time.monotonic() - self.last_pass

    def ack_message(self, message):
        self._settle(super().ack_message, message, "acknowledged")

    def requeue_message(self, message):
        self._settle(super().requeue_message, message, "requeued")

    def _settle(self, settle, message, outcome):
        try:
            settle(message)
        except LOST_DELIVERY_ERRORS as exc:
            log.warning(
                "connection lost before a message was %s; the broker delivers it again", outcome,
                extra={
                    "routing_key": (message.delivery_info or {}).get("routing_key"),
                    "reason": f"{type(exc).__name__}: {exc}",
                },
            )

    @contextmanager
    def establish_connection(self):
        # kombu's own body, with the pace of the retries passed on
        self.last_pass = time.monotonic()  # each attempt, including one whose consumers then fail to set up
        with self.create_connection() as connection:
            options = connection.transport_options or {}
            pace = {key: options[key] for key in RECONNECT_PACE_OPTIONS if key in options}
            connection.ensure_connection(self.on_connection_error, self.connect_max_retries, **pace)
            yield connection
