"""Turning an event into stored notifications, and the rules of sending them:
which channel, quiet hours, how long a send may hold its claim, the backoff
between attempts, and what is announced once a notification is settled."""
import hashlib
from dataclasses import asdict
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from wangge import events

from services.notify.channels import CHANNEL_NAMES

PENDING = "pending"
HELD = "held"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
WAITING = (PENDING, HELD)
# Waiting, or taken by a process that may have died (its claim runs out).
DUE = (*WAITING, SENDING)

LEVEL_NAMES = {"grid": "网格", "community": "社区", "town": "乡镇", "department": "职能部门"}
CLOCK_NAMES = {"first_response": "响应", "resolution": "办结"}


def notification_id(event_id, recipient_key, channel):
    """Short, URL-safe, and the same for the same (event, recipient, channel)."""
    return hashlib.sha1(f"{event_id}|{recipient_key}|{channel}".encode("utf-8")).hexdigest()[:24]


def channel_for(recipient, preferences, routes):
    preferred = (preferences or {}).get("channel")
    return preferred if preferred in CHANNEL_NAMES else routes[recipient.role]


def _clock(text):
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now, quiet_hours):
    """The end of the quiet period ``now`` falls in (county time), else ``None``.
    The period may cross midnight (22:00–07:00)."""
    zone = ZoneInfo(quiet_hours["TIMEZONE"])
    local = now.astimezone(zone)
    start, end = _clock(quiet_hours["START"]), _clock(quiet_hours["END"])
    at = local.time()
    crosses_midnight = start > end
    inside = (at >= start or at < end) if crosses_midnight else (start <= at < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if crosses_midnight and at >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=zone)


def quiet_roles(quiet_hours):
    """``QUIET_HOURS.ROLES`` as a set, from a list or a comma-separated setting."""
    roles = quiet_hours["ROLES"]
    return {role.strip() for role in (roles.split(",") if isinstance(roles, str) else roles) if role.strip()}


def held_until(role, channel, urgent, now, quiet_hours):
    """Residents' texts wait for morning, unless the matter is urgent."""
    if urgent or role not in quiet_roles(quiet_hours) or channel not in ("sms",):
        return None
    return quiet_until(now, quiet_hours)


def backoff(attempts, settings):
    """Seconds before the next attempt after ``attempts`` failures: doubling, capped."""
    return min(float(settings["BACKOFF_SECONDS"]) * 2 ** (attempts - 1), float(settings["MAX_BACKOFF_SECONDS"]))


def retry_at(attempts, retriable, settings, now):
    """When to try again after the ``attempts``-th failure; ``None`` to give up."""
    if not retriable or attempts >= int(settings["MAX_ATTEMPTS"]):
        return None
    return now + timedelta(seconds=backoff(attempts, settings))


def claim_period(settings):
    return timedelta(seconds=float(settings["CLAIM_SECONDS"]))


def send_deadline(settings):
    """Seconds a send may take: half its claim, so that its outcome is recorded
    before the claim runs out and another process may take the notification."""
    return float(settings["CLAIM_SECONDS"]) / 2


def outcome_event(notification, status, error, event_id, now):
    """``notification_sent`` or ``notification_failed`` for a settled notification."""
    event_type = events.NOTIFICATION_SENT if status == SENT else events.NOTIFICATION_FAILED
    return events.build_event(event_type, {
        "notification_id": notification["_id"], "source_event_id": notification["event_id"], "kind": notification["kind"],
        "recipient_role": notification["recipient"]["role"], "channel": notification["channel"], "status": status,
        "attempts": notification["attempts"], "case_id": notification.get("case_id"),
        "tracking_no": notification.get("tracking_no"), "error": error,
    }, event_id=event_id, occurred_at=now)


# every field an event's data may carry, from the contracts (read once)
CONTRACT_FIELDS = (*events.CaseEventData().fields, *events.StudyDispatchData().fields, *events.VisitOverdueData().fields)


def template_context(data, recipient=None):
    """Every field of the case event contract (absent optional ones as None, so an
    older producer's event still renders; a name outside the contract is still an
    error), plus display values with fallbacks for what a message must never leave blank."""
    fields = dict.fromkeys(CONTRACT_FIELDS)
    fields.update(data)
    return {
        **fields,
        "recipient": asdict(recipient) if recipient else {},
        "grid_name": data.get("grid_name") or "乡镇分拨",
        "category_name": data.get("category_name") or data.get("category") or "其他",
        "summary": data.get("summary") or "（详见系统）",
        "level_name": LEVEL_NAMES.get(data.get("level"), data.get("level")),
        "clock_name": CLOCK_NAMES.get(data.get("sla_clock"), data.get("sla_clock")),
    }


def plan_notification(envelope, recipient, kind, channel, templates, config, now):
    """The notification document for one recipient of one event (not yet stored)."""
    data = envelope["data"]
    subject, body = templates.render(kind, template_context(data, recipient))
    hold = held_until(recipient.role, channel, bool(data.get("urgent")), now, config["QUIET_HOURS"])
    return {
        "_id": notification_id(envelope["event_id"], recipient.key, channel),
        "event_id": envelope["event_id"],
        "event_type": envelope["event_type"],
        "occurred_at": envelope["occurred_at"],
        "kind": kind,
        "case_id": data.get("case_id"),
        "campaign_id": data.get("campaign_id"),
        "tracking_no": data.get("tracking_no"),
        "grid_id": data.get("grid_id"),
        "urgent": bool(data.get("urgent")),
        "recipient": {key: value for key, value in asdict(recipient).items() if value is not None},
        "channel": channel,
        "subject": subject,
        "body": body,
        # Stored waiting: a sender claims it right before its own send.
        "status": HELD if hold else PENDING,
        "held_until": hold,
        "attempts": 0,
        "next_attempt_at": hold or now,
        "created_at": now,
        "sent_at": None,
        "last_error": None,
        "attempt_log": [],
    }
