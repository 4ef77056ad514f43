"""From an event to messages on the wire. Every notification is stored first;
a sender claims a send's notifications (one, or a batch on a channel that takes
many at once) right before sending, with a claim of its own, and records what
each met against that claim, after storing the announcement of the settled ones'
outcomes. The announcement is published at once beside the sends
(``announcing.py``); what the broker does not take then, a timer publishes later."""
import logging
import time
import uuid
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta

import eventlet

from wangge import events
from wangge.logs import mask_name

from services.notify import delivery, recipients
from services.notify.channels import DeliveryFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    notification: dict
    status: str  # sent, failed (for good) or retry
    error: str | None = None
    gateway_failed: bool = False  # the gateway's fault (counts for its breaker), not the message's
    recorded: bool = True  # False: the claim had run out and another process took the notification


def accept_event(store, templates, config, envelope, chosen, now, holding=lambda channel: None):
    """Store one notification per (recipient, channel) of the event; returns those
    newly stored and due now (a redelivered event stores, and so sends, nothing;
    messages held for quiet hours wait for their time). One due on a channel this
    process sends on next is stored already claimed under ``holding(channel)``."""
    preferences = store.preferences_for([recipient.key for recipient, _ in chosen])
    planned = [delivery.plan_notification(envelope, recipient, kind, delivery.channel_for(recipient, preferences.get(recipient.key), config["ROUTES"]),
                                          templates, config, now)
               for recipient, kind in chosen]
    for notification in planned:
        claim = holding(notification["channel"]) if notification["status"] == delivery.PENDING else None
        if claim:
            notification.update(status=delivery.SENDING, claim=claim, next_attempt_at=now + delivery.claim_period(config["DELIVERY"]))
    return [notification for notification in store.insert_new(planned) if notification["status"] != delivery.HELD]


def recipients_of(envelope):
    if envelope["event_type"] in events.STUDY_EVENTS:
        return recipients.for_study_event(envelope["event_type"], envelope["data"])
    if envelope["event_type"] in events.CARE_EVENTS:
        return recipients.for_visit_overdue(envelope["data"])
    return recipients.for_case_event(envelope["event_type"], envelope["data"])


def deliver(store, channel, settings, notification_ids, owner, held=None, announcer=None):
    """Claim the due ones of these notifications, send them one after another, and
    record what each send met against its claim; [] if another process has them all.
    ``held``: notifications stored already claimed by this process (by id), sent under
    that claim while it has the time of a send left, else claimed again. Every send of
    the batch ends by half the claim: what has not started by then goes back unsent,
    so no claim runs out before its outcome is recorded. Any error of a send is a
    failed attempt. ``announcer`` (an :class:`~services.notify.announcing.Announcer`)
    reserves the announcement of the settled ones' outcomes before it is stored and
    publishes it once they are recorded."""
    began = now = events.utcnow()
    deadline, timer = timedelta(seconds=delivery.send_deadline(settings)), StageTimer()
    held = {notification_id: notification for notification_id, notification in (held or {}).items()
            if notification_id in notification_ids}
    taken = {notification_id: notification for notification_id, notification in held.items()
             if notification["next_attempt_at"] - now >= deadline}
    running_short = [notification for notification_id, notification in held.items() if notification_id not in taken]
    claim = uuid.uuid4().hex
    taken.update(store.renew(running_short, claim, now, delivery.claim_period(settings)))
    if len(taken) < len(notification_ids):
        taken.update((found["_id"], found) for found in store.claim(
            [notification_id for notification_id in notification_ids if notification_id not in taken], claim, now, delivery.claim_period(settings)))
    notifications = [taken[notification_id] for notification_id in notification_ids if notification_id in taken]
    timer.lap("claiming")
    ends_at = time.monotonic() + delivery.send_deadline(settings)
    results, unsent = [], []
    for notification in notifications:
        left = ends_at - time.monotonic()
        if left <= 0:
            unsent.append(notification["_id"])
            continue
        try:
            send_within(channel, notification, left)
        except Exception as exc:
            results.append(failure(settings, notification, notification["claim"], exc, events.utcnow()))
        else:
            results.append(success(notification, notification["claim"], events.utcnow()))
    for under in {notification["claim"] for notification in notifications}:
        store.release([n["_id"] for n in notifications if n["_id"] in unsent and n["claim"] == under], under, events.utcnow())
    timer.lap("sending")  # with handing back what the deadline left unsent
    now = events.utcnow()
    announcement = {"_id": uuid.uuid4().hex, "events": [event for _, (_, _, _, event) in results if event], "queued_at": now, "queued_by": owner}
    recorded = set()
    with announcer.announcing(announcement) if announcer and announcement["events"] else nullcontext():
        for under in {outcome.notification["claim"] for outcome, _ in results}:
            # the announcement is stored with the first claim's outcomes
            recorded |= store.record_outcomes(under, now, [record[:3] for outcome, record in results if outcome.notification["claim"] == under],
                                              announcement)
            announcement = None
    timer.lap("recording_and_announcing")
    outcomes = []
    for outcome, _ in results:
        if outcome.notification["_id"] not in recorded:
            log_lost_claim(outcome.notification)
        outcomes.append(replace(outcome, recorded=outcome.notification["_id"] in recorded))
    log_send(channel, began, notification_ids, notifications, outcomes, unsent, timer)
    return outcomes


def send_within(channel, notification, seconds):
    with eventlet.Timeout(seconds, False):
        channel.send(notification)
        return
    raise DeliveryFailed(f"no answer within {seconds:.2g} s")


def success(notification, claim, now):
    """(the outcome, what to record of it) of a send that went out."""
    settled = {**notification, "attempts": notification["attempts"] + 1}
    event = delivery.outcome_event(settled, delivery.SENT, None, f"{notification['_id']}:{claim}", now)
    return Outcome(settled, delivery.SENT), (notification["_id"], None, None, event)


def failure(settings, notification, claim, exc, now):
    """(the outcome, what to record of it) of a send that failed: tried again later, or failed for good."""
    expected = isinstance(exc, DeliveryFailed)
    error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
    attempts = notification["attempts"] + 1
    retry_at = delivery.retry_at(attempts, not expected or exc.retriable, settings, now)
    settled = {**notification, "attempts": attempts}
    event = None if retry_at else delivery.outcome_event(settled, delivery.FAILED, error, f"{notification['_id']}:{claim}", now)
    # an error that is not DeliveryFailed is a fault of ours: its traceback goes to the log
    log.warning("notification not delivered", exc_info=None if expected else exc, extra={
        "notification_id": notification["_id"], "channel": notification["channel"], "attempt": attempts,
        "recipient": mask_name(notification["recipient"].get("name")), "error": error, "final": retry_at is None,
    })
    outcome = Outcome(settled, delivery.FAILED if retry_at is None else "retry", error, gateway_failed=expected and exc.retriable)
    return outcome, (notification["_id"], error, retry_at, event)


class StageTimer:
    """Seconds each stage of a send took, one lap after another."""

    def __init__(self):
        self.since, self.laps = time.monotonic(), {}

    def lap(self, stage):
        now = time.monotonic()
        self.laps[f"{stage}_seconds"], self.since = round(now - self.since, 3), now


def log_send(channel, began, notification_ids, notifications, outcomes, unsent, timer):
    """One line a send (a notice, or a batch on a channel that takes many): what it
    met and where its time went; where an operator looks when notices go out late.
    ``waited_seconds``: from the oldest of them being stored to this send."""
    if not notifications:
        return  # another process had them all
    statuses = Counter(outcome.status for outcome in outcomes)
    log.info("notifications sent", extra={
        "channel": channel.name, "notifications": len(notification_ids), "sent": statuses[delivery.SENT],
        "to_retry": statuses["retry"], "failed": statuses[delivery.FAILED], "unsent": len(unsent),
        "taken_by_another": len(notification_ids) - len(notifications),
        "not_recorded": sum(not outcome.recorded for outcome in outcomes),
        "waited_seconds": round((began - min(n["created_at"] for n in notifications)).total_seconds(), 3), **timer.laps})


def log_lost_claim(notification):
    log.warning("outcome not recorded: the claim ran out before the send ended", extra={
        "notification_id": notification["_id"], "channel": notification["channel"]})


def announcements_due(store, owner, now, grace, settle=timedelta(0), in_flight=frozenset()):
    """(announcement id, its events) to publish now: this process's own once ``settle``
    has passed, unless it is reserved for publishing beside the sends (``in_flight``, the
    announcer's live set); another process's only once ``grace`` has passed (that
    process may have died)."""
    # reserved as the read starts, or when it ends: one published and dropped while the
    # store answers has left the set by then, though the read may have found it
    under_way = set(in_flight)
    found = store.pending_announcements(now)
    under_way |= in_flight
    return [(announcement["_id"], announcement["events"]) for announcement in found if announcement["_id"] not in under_way
            and announcement["queued_at"] <= now - (settle if announcement["queued_by"] == owner else grace)]


def delivery_latency(notification, now):
    return (now - notification["occurred_at"]).total_seconds()
