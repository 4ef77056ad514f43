"""From an event to messages on the wire. Every notification is stored first;
a sender claims each one right before its own send, with a claim of its own, and
records what the send met against that claim, together with the announcement of
a settled notification, which a timer publishes once the broker takes it."""
import logging
import uuid
from dataclasses import dataclass

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


def accept_event(store, templates, config, envelope, chosen, now):
    """Store one notification per (recipient, channel) of the event; returns those
    newly stored and due now (a redelivered event stores, and so sends, nothing;
    messages held for quiet hours wait for their time)."""
    preferences = store.preferences_for([recipient.key for recipient, _ in chosen])
    stored = []
    for recipient, kind in chosen:
        wishes = preferences.get(recipient.key)
        channel = delivery.channel_for(recipient, wishes, config["ROUTES"])
        notification = delivery.plan_notification(envelope, recipient, kind, channel, templates, config, now)
        if store.insert_new(notification) and notification["status"] == delivery.PENDING:
            stored.append(notification)
    return stored


def recipients_of(envelope):
    if envelope["event_type"] in events.STUDY_EVENTS:
        return recipients.for_study_event(envelope["event_type"], envelope["data"])
    if envelope["event_type"] in events.CARE_EVENTS:
        return recipients.for_visit_overdue(envelope["data"])
    return recipients.for_case_event(envelope["event_type"], envelope["data"])


def deliver(store, channel, settings, notification_id, owner):
    """Claim a due notification, send it, and record the outcome against the claim;
    ``None`` if another process has it. Any error of the send is a failed attempt."""
    claim = uuid.uuid4().hex
    notification = store.claim(notification_id, claim, events.utcnow(), delivery.claim_period(settings))
    if notification is None:
        return None
    try:
        send_within(channel, notification, delivery.send_deadline(settings))
    except Exception as exc:
        return record_failure(store, settings, notification, claim, owner, exc, events.utcnow())
    return record_sent(store, notification, claim, owner, events.utcnow())


def send_within(channel, notification, seconds):
    with eventlet.Timeout(seconds, False):
        channel.send(notification)
        return
    raise DeliveryFailed(f"no answer within {seconds:g} s")


def record_sent(store, notification, claim, owner, now):
    settled = {**notification, "attempts": notification["attempts"] + 1}
    announcement = queued(delivery.outcome_event(settled, delivery.SENT, None, f"{notification['_id']}:{claim}", now), owner, now)
    recorded = store.record_sent(notification["_id"], claim, now, announcement)
    if not recorded:
        log_lost_claim(notification)
    return Outcome(settled, delivery.SENT, recorded=recorded)


def record_failure(store, settings, notification, claim, owner, exc, now):
    expected = isinstance(exc, DeliveryFailed)
    error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
    attempts = notification["attempts"] + 1
    retry_at = delivery.retry_at(attempts, not expected or exc.retriable, settings, now)
    settled = {**notification, "attempts": attempts}
    announcement = None if retry_at else queued(
        delivery.outcome_event(settled, delivery.FAILED, error, f"{notification['_id']}:{claim}", now), owner, now)
    recorded = store.record_failure(notification["_id"], claim, now, error, retry_at, announcement)
    # an error that is not DeliveryFailed is a fault of ours: its traceback goes to the log
    log.warning("notification not delivered", exc_info=None if expected else exc, extra={
        "notification_id": notification["_id"], "channel": notification["channel"], "attempt": attempts,
        "recipient": mask_name(notification["recipient"].get("name")), "error": error, "final": retry_at is None,
    })
    if not recorded:
        log_lost_claim(notification)
    return Outcome(settled, delivery.FAILED if retry_at is None else "retry", error,
                   gateway_failed=expected and exc.retriable, recorded=recorded)


def queued(event, owner, now):
    return {"event": event, "queued_at": now, "queued_by": owner}


def log_lost_claim(notification):
    log.warning("outcome not recorded: the claim ran out before the send ended", extra={
        "notification_id": notification["_id"], "channel": notification["channel"]})


def announcements_due(store, owner, now, grace):
    """(notification id, event) to publish now: this process's own at once, another
    process's only once ``grace`` has passed (that process may have died)."""
    due = []
    for found in store.pending_announcements(now):
        announcement = found["announcement"]
        if announcement["queued_by"] == owner or announcement["queued_at"] <= now - grace:
            due.append((found["_id"], announcement["event"]))
    return due


def delivery_latency(notification, now):
    return (now - notification["occurred_at"]).total_seconds()
