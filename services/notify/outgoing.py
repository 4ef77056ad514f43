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
    """Store one notification per (recipient, channel) of the event; returns those
    newly stored and taken for sending now (a redelivered event stores, and so
    sends, nothing; messages held for quiet hours wait for the timer)."""
    preferences = store.preferences_for([recipient.key for recipient, _ in chosen])
    claim_for = claim_period(config)
    taken = []
    for recipient, kind in chosen:
        wishes = preferences.get(recipient.key)
        channel = delivery.channel_for(recipient, wishes, config["ROUTES"])
        notification = delivery.plan_notification(envelope, recipient, kind, channel, templates, wishes, config, now, claim_for)
        if store.insert_new(notification) and notification["status"] == delivery.SENDING:
            taken.append(notification)
    return taken


def claim_period(config):
    return timedelta(seconds=float(config["DELIVERY"]["CLAIM_SECONDS"]))


def recipients_of(envelope):
    if envelope["event_type"] in events.STUDY_EVENTS:
        return recipients.for_study_event(envelope["event_type"], envelope["data"])
    return recipients.for_case_event(envelope["event_type"], envelope["data"])


def claim(store, config, notification_id, now):
    """Take a due notification for sending; ``None`` if another process has it."""
    return store.claim(notification_id, now, claim_period(config))


def send(store, channels, config, notification, now):
    """Send a notification this process has taken, and record what happened."""
    settings = config["DELIVERY"]
    notification_id = notification["_id"]
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
