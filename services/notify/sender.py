"""Sending, apart from everything else. Event handlers and HTTP requests only store
notifications and hand them over; here every channel has a pool of green threads
of its own, at most ``CONCURRENCY`` sends at once, and a circuit breaker, so a
gateway that hangs or fails holds up its own messages and nothing else: not the
other channels, not the event handlers, not ``/health``."""
import logging
import uuid

import eventlet

from wangge import events

from services.notify import delivery, metrics, outgoing
from services.notify.breaker import HALF_OPEN, OPEN, CircuitBreaker

log = logging.getLogger(__name__)


class Lane:
    """One channel's sends."""

    def __init__(self, name, channel, concurrency, breaker):
        self.name = name
        self.channel = channel
        self.pool = eventlet.GreenPool(concurrency)
        self.breaker = breaker
        self.in_flight = set()

    def room(self):
        """How many more sends may start now."""
        state = self.breaker.state
        if state == OPEN:
            return 0
        return min(self.pool.free(), 1) if state == HALF_OPEN else self.pool.free()


class Sender:
    def __init__(self, store, channels, config):
        self.store = store
        self.settings = config["DELIVERY"]
        breaker = config["CHANNELS"]["BREAKER"]
        self.lanes = {
            name: Lane(name, channel, int(config["CHANNELS"][name].get("CONCURRENCY", 1)),
                       CircuitBreaker(int(breaker["FAILURES"]), float(breaker["RESET_SECONDS"])))
            for name, channel in channels.items()
        }
        # names this process in the announcements it queues
        self.owner = uuid.uuid4().hex
        self.stopping = False

    def offer(self, notifications):
        """Start sending these where their channel has room; the rest wait for ``send_due``."""
        for notification in notifications:
            self._start(self.lanes[notification["channel"]], notification["_id"])

    def send_due(self, now):
        """Start what is due, channel by channel, as far as each has room."""
        for lane in self.lanes.values():
            metrics.CHANNEL_OPEN.labels(lane.name).set(1 if lane.breaker.state == OPEN else 0)
            room = lane.room()
            if room:
                for notification_id in self.store.due_ids(lane.name, now, room):
                    self._start(lane, notification_id)

    def states(self):
        return {name: lane.breaker.state for name, lane in self.lanes.items()}

    def drain(self):
        """Start nothing more and let the sends in flight end (each is cut off at its
        deadline), so that their outcomes are recorded."""
        self.stopping = True
        for lane in self.lanes.values():
            lane.pool.waitall()

    def _start(self, lane, notification_id):
        if self.stopping or notification_id in lane.in_flight or not lane.pool.free() or not lane.breaker.allow():
            return
        lane.in_flight.add(notification_id)
        lane.pool.spawn_n(self._deliver, lane, notification_id)

    def _deliver(self, lane, notification_id):
        outcome = None
        try:
            outcome = outgoing.deliver(self.store, lane.channel, self.settings, notification_id, self.owner)
        except Exception:
            # the store failed us: the claim runs out and the notification is tried again
            log.exception("delivery interrupted", extra={"notification_id": notification_id, "channel": lane.name})
        finally:
            lane.in_flight.discard(notification_id)
            settle_breaker(lane.breaker, outcome)
        if outcome is not None:
            count(outcome)


def settle_breaker(breaker, outcome):
    if outcome is not None and outcome.status == delivery.SENT:
        breaker.succeeded()
    elif outcome is not None and outcome.gateway_failed:
        breaker.failed()
    else:
        breaker.inconclusive()


def count(outcome):
    notification = outcome.notification
    metrics.ATTEMPTS.labels(notification["channel"], "ok" if outcome.status == delivery.SENT else "error").inc()
    if outcome.recorded and outcome.status in (delivery.SENT, delivery.FAILED):
        metrics.NOTIFICATIONS.labels(outcome.status, notification["channel"], notification["kind"]).inc()
    if outcome.status == delivery.SENT:
        metrics.LATENCY.labels(notification["channel"]).observe(outgoing.delivery_latency(notification, events.utcnow()))
