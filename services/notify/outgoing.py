"""From an event to messages on the wire: store every notification first, then
send what is due, one claim at a time."""
import logging
from dataclasses import dataclass
from datetime import timedelta

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


def accept_event(store, templates, config, envelope, chosen, now):
    """Store one notification per (recipient, channel) of the event; returns the
    ids newly stored (a redelivered event stores, and so sends, nothing)."""
    preferences = store.preferences_for([recipient.key for recipient, _ in chosen])
    stored = []
    for recipient, kind in chosen:
        wishes = preferences.get(recipient.key)
        channel = delivery.channel_for(recipient, wishes, config["ROUTES"])
        notification = delivery.plan_notification(envelope, recipient, kind, channel, templates, wishes, config, now)
        if store.insert_new(notification):
            stored.append(notification["_id"])
    return stored


def recipients_of(envelope):
    if envelope["event_type"] in events.STUDY_EVENTS:
        return recipients.for_study_event(envelope["event_type"], envelope["data"])
    return recipients.for_case_event(envelope["event_type"], envelope["data"])


def send(store, channels, config, notification_id, now):
    """Claim and send one notification; ``None`` if another process has it."""
    settings = config["DELIVERY"]
    notification = store.claim(notification_id, now, timedelta(seconds=float(settings["CLAIM_SECONDS"])))
    if notification is None:
        return None
    channel = channels[notification["channel"]]
    try:
        channel.send(notification)
    except DeliveryFailed as exc:
        attempts = notification["attempts"] + 1
        last = not exc.retriable or attempts >= int(settings["MAX_ATTEMPTS"])
        retry_at = None if last else now + timedelta(seconds=delivery.backoff(attempts, settings))
        store.record_failure(notification_id, now, str(exc), retry_at)
        log.warning("notification not delivered", extra={
            "notification_id": notification_id, "channel": notification["channel"], "attempt": attempts,
            "recipient": mask_name(notification["recipient"].get("name")), "error": str(exc), "final": last,
        })
        return Outcome({**notification, "attempts": attempts}, delivery.FAILED if last else "retry", str(exc))
    store.record_sent(notification_id, now)
    return Outcome({**notification, "attempts": notification["attempts"] + 1}, delivery.SENT)


def delivery_latency(notification, now):
    return (now - notification["occurred_at"]).total_seconds()
