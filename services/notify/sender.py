"""Sending, apart from everything else. Event handlers and HTTP requests only store
notifications and hand them over; here every channel has a pool of green threads
of its own, at most ``CONCURRENCY`` sends at once (each of up to ``BATCH``
notifications), and a circuit breaker, so a gateway that hangs or fails holds up
its own messages and nothing else: not the other channels, not the event
handlers, not ``/health``. A channel's sends follow one another while there is
work; the timer only picks up what no send did (retries, held, other processes')."""
import logging
import uuid
from datetime import timedelta

import eventlet

from wangge import events
from wangge.logs import short_error

from services.notify import delivery, metrics, outgoing
from services.notify.breaker import HALF_OPEN, OPEN, CircuitBreaker

log = logging.getLogger(__name__)


class Lane:
    """One channel's sends: at most ``concurrency`` at once, each of at most ``batch``
    notifications (1 but for a channel that takes many in one go)."""

    def __init__(self, name, channel, concurrency, batch, breaker):
        self.name = name
        self.channel = channel
        self.pool = eventlet.GreenPool(concurrency)
        self.batch = batch
        self.breaker = breaker
        self.waiting = []  # offered or found due, not started yet
        self.in_flight = set()
        # this process stores the lane's new notifications already claimed under this, to send next
        self.claim = uuid.uuid4().hex
        self.held = {}  # those of them not sent yet, by id
        self.all_due_read_at = None  # when held and stale-claimed notifications were last looked for
        self.more_may_be_due = False  # that look found as many as it asked for: there may be more

    def room(self):
        """How many more sends may start now."""
        state = self.breaker.state
        if state == OPEN:
            return 0
        return min(self.pool.free(), 1) if state == HALF_OPEN else self.pool.free()

    def add(self, notification_ids):
        known = self.in_flight.union(self.waiting)
        self.waiting += [notification_id for notification_id in notification_ids if notification_id not in known]


class Sender:
    """``announcer``: an :class:`~services.notify.announcing.Announcer` that publishes each
    send's outcomes once recorded (without one, the announce timer does)."""

    def __init__(self, store, channels, config, announcer=None):
        self.store = store
        self.announcer = announcer
        self.settings = config["DELIVERY"]
        breaker = config["CHANNELS"]["BREAKER"]
        self.lanes = {
            name: Lane(name, channel, int(config["CHANNELS"][name].get("CONCURRENCY", 1)), int(config["CHANNELS"][name].get("BATCH", 1)),
                       CircuitBreaker(int(breaker["FAILURES"]), float(breaker["RESET_SECONDS"])))
            for name, channel in channels.items()
        }
        # Held notifications wait for quiet hours to end and a claim runs out after
        # CLAIM_SECONDS: looked for this often, not on every round as retries are.
        self.all_due_every = timedelta(seconds=float(self.settings.get("HELD_AND_STALE_CHECK_SECONDS", 10)))
        # names this process in the announcements it queues
        self.owner = uuid.uuid4().hex
        self.stopping = False

    def holding(self, channel):
        """The claim under which new notifications of ``channel`` are stored, for this
        process to send them next; ``None`` while the channel's gateway is failing (they
        are stored waiting, for whichever process has a working one)."""
        lane = self.lanes[channel]
        return None if self.stopping or lane.breaker.state == OPEN else lane.claim

    def offer(self, notifications):
        """Start sending these where their channel has room; the rest wait their turn."""
        offered = {}
        for notification in notifications:
            lane = offered.setdefault(notification["channel"], self.lanes[notification["channel"]])
            if notification.get("claim") == lane.claim:
                lane.held[notification["_id"]] = notification
            lane.add([notification["_id"]])
        for lane in offered.values():
            self._start(lane)

    def send_due(self, now):
        """Start what is due, channel by channel, as far as each has room."""
        for lane in self.lanes.values():
            metrics.CHANNEL_OPEN.labels(lane.name).set(1 if lane.breaker.state == OPEN else 0)
            self._top_up(lane, now)

    def states(self):
        return {name: lane.breaker.state for name, lane in self.lanes.items()}

    def drain(self):
        """Start nothing more and let the sends in flight end (each is cut off at its
        deadline), so that their outcomes are recorded."""
        self.stopping = True
        for lane in self.lanes.values():
            lane.pool.waitall()

    def _top_up(self, lane, now):
        wanted = lane.room() * lane.batch - len(lane.waiting)
        if wanted > 0:
            # every status while a look at all of them may have left some (a night's held
            # messages drain at the channel's speed), else retries only, between looks
            look_at_all = (lane.more_may_be_due or lane.all_due_read_at is None
                           or now - lane.all_due_read_at >= self.all_due_every)
            found = self.store.due_ids(lane.name, now, wanted, delivery.DUE if look_at_all else (delivery.PENDING,))
            if look_at_all:
                lane.all_due_read_at, lane.more_may_be_due = now, len(found) >= wanted
            lane.add(found)
        self._start(lane)

    def _start(self, lane):
        while not self.stopping and lane.waiting and lane.pool.free() and lane.breaker.allow():
            size = 1 if lane.breaker.state == HALF_OPEN else lane.batch
            notification_ids, lane.waiting = lane.waiting[:size], lane.waiting[size:]
            lane.in_flight.update(notification_ids)
            lane.pool.spawn_n(self._deliver, lane, notification_ids)

    def _deliver(self, lane, notification_ids):
        outcomes = []
        try:
            outcomes = outgoing.deliver(self.store, lane.channel, self.settings, notification_ids, self.owner, lane.held,
                                        self.announcer)
        except Exception:
            # the store failed us: the claims run out and the notifications are tried again
            log.exception("delivery interrupted", extra={"notifications": len(notification_ids), "channel": lane.name})
        finally:
            lane.in_flight.difference_update(notification_ids)
            for notification_id in notification_ids:
                lane.held.pop(notification_id, None)
            settle_breaker(lane.breaker, outcomes)
        for outcome in outcomes:
            count(outcome)
        if not self.stopping:
            # the lane keeps going while there is work, rather than waiting for the timer
            # (once this send has left the pool): a full send may have left more due
            eventlet.spawn_n(self._carry_on, lane, bool(outcomes) and len(notification_ids) == lane.batch)

    def _carry_on(self, lane, more_due):
        try:
            if more_due:
                self._top_up(lane, events.utcnow())
            else:
                self._start(lane)
        except Exception as exc:
            log.warning("due notifications not read; the timer reads them again", extra={"channel": lane.name, "reason": short_error(exc)})


def settle_breaker(breaker, outcomes):
    if any(outcome.status == delivery.SENT for outcome in outcomes):
        breaker.succeeded()
    elif any(outcome.gateway_failed for outcome in outcomes):
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
