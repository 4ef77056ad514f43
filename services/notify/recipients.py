"""Who hears about an event, and as what (the template kind).

Each recipient has a stable ``key`` (a person's registry id, which is the
subject of their access token; ``resident:<tracking_no>`` for a resident,
``group:<wechat group id>`` for a grid's group, ``ops`` for the operators), which
with the event id and the channel makes a notification's identity: the same event
never reaches the same person twice on the same channel.
"""
import hashlib
import re
from dataclasses import dataclass

from wangge import events
from wangge.auth import Forbidden

RESIDENT_PREFIX = "resident:"
GROUP_PREFIX = "group:"
# may choose the channel of any recipient, not only their own
PREFERENCES_FOR_ANYONE = frozenset({"county_admin"})

# The role an assignee plays at each level of a case.
ROLE_AT_LEVEL = {"grid": "worker", "community": "lead", "town": "lead", "department": "department"}


@dataclass(frozen=True)
class Recipient:
    role: str
    key: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    group: str | None = None  # a WeChat group id, for grid_group


def _person(role, record):
    if not record or not record.get("id"):
        return None
    return Recipient(role, record["id"], record.get("name"), record.get("phone"), record.get("email"))


def assignee(data):
    record = data.get("assignee")
    if data.get("level") == "department" and data.get("department"):
        record = data["department"].get("contact") or record
    return _person(ROLE_AT_LEVEL.get(data.get("level") or "grid", "worker"), record)


def grid_head(data):
    return _person("grid_head", data.get("grid_head"))


def resident(data):
    reporter = data.get("reporter") or {}
    if not reporter.get("phone"):
        return None  # the resident left no way to reach them
    return Recipient("resident", f"{RESIDENT_PREFIX}{data['tracking_no']}", reporter.get("name"), reporter.get("phone"))


OPERATIONS = Recipient("ops", "ops", "运维值班")
OPS_ALERT = "ops_alert"


def require_say_over(caller, recipient_key):
    """A person chooses their own channel (their key is their registry id, the subject
    of their token); residents', groups', the operators' and other people's are the
    county administrator's to choose."""
    own = recipient_key == caller.subject and recipient_key != OPERATIONS.key and not recipient_key.startswith((RESIDENT_PREFIX, GROUP_PREFIX))
    if not (own or caller.has_any(PREFERENCES_FOR_ANYONE)):
        raise Forbidden("You may choose only your own channel.",
                        {"recipient_key": [f"Not yours: your recipient key is {caller.subject}; "
                                           f"others' (residents' included) are for: {', '.join(sorted(PREFERENCES_FOR_ANYONE))}."]})


# What an alert may put in front of the operators: Prometheus names its alerts like
# its metrics, and rules use these severities. Anything else in a label or an
# annotation is text from whoever can write a rule or reach Alertmanager.
ALERT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
SEVERITIES = ("critical", "warning", "info")
SUMMARY_CHARS = 120
ALERTS_SHOWN = 20
LINK = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S*", re.IGNORECASE)
# line breaks, other control characters and the invisible ones that can reorder or hide text
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]+")


def alert_line(text):
    """One short line of plain text: no links (an operator is not to be sent
    anywhere by an alert), no line breaks (no forged lines of our own)."""
    text = LINK.sub("[链接已删除]", UNPRINTABLE.sub(" ", str(text or "")))
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def shown_alert(alert):
    name = alert["labels"].get("alertname")
    name = name if isinstance(name, str) and ALERT_NAME.fullmatch(name) else "（告警名无效）"
    severity = alert["labels"].get("severity")
    return {
        "name": name, "severity": severity if severity in SEVERITIES else "unknown",
        "summary": alert_line(alert["annotations"].get("summary")) or name,
        "status": "resolved" if alert["status"] == "resolved" else "firing",
    }


def alert_envelope(payload, now):
    """Alertmanager's notification as an event: one message per group and state
    (a repeat of the same firing group is recognised and not sent twice). Only each
    alert's name, severity and summary, cleaned, reach the operators' group."""
    alerts = [shown_alert(alert) for alert in payload["alerts"]]
    identity = "|".join([payload["groupKey"], payload["status"], *sorted(f"{a['fingerprint']}@{a['startsAt']}" for a in payload["alerts"])])
    return {
        "event_id": hashlib.sha1(identity.encode("utf-8")).hexdigest(), "event_type": OPS_ALERT, "occurred_at": now,
        "data": {"status": payload["status"], "alerts": alerts[:ALERTS_SHOWN], "more_alerts": max(0, len(alerts) - ALERTS_SHOWN)},
    }


def for_study_event(event_type, data):
    """[(recipient, template kind)]: the grid's groups get the material; members
    who have not taken part get the reminder."""
    if event_type == events.CAMPAIGN_DUE:
        chosen = [Recipient("grid_group", f"{GROUP_PREFIX}{group}", data.get("grid_name"), group=group) for group in data.get("wechat_group_ids") or []]
    else:
        chosen = [Recipient("member", member["member_id"], member.get("name"), member.get("phone"))
                  for member in data.get("members") or [] if member.get("phone")]
    return [(recipient, f"{event_type}.{recipient.role}") for recipient in chosen]


def for_visit_overdue(data):
    """[(recipient, template kind)]: the resident's worker when the visit falls overdue (the
    grid head if the grid has no worker), the grid head once the grace period has passed."""
    if data["stage"] == "worker":
        recipient = _person("worker", data.get("worker")) or grid_head(data)
    else:
        recipient = grid_head(data)
    return [(recipient, f"{events.VISIT_OVERDUE}.{recipient.role}")] if recipient else []


def for_case_event(event_type, data):
    """[(recipient, template kind)] for one case event."""
    wanted = {
        events.CASE_ASSIGNED: [assignee(data), resident(data)],
        events.CASE_ESCALATED: [assignee(data), grid_head(data)],
        events.CASE_MERGED: [resident(data)],
        events.CASE_CLOSED: [resident(data)],
        events.FOLLOW_UP_REQUESTED: [resident(data)],
        events.SLA_WARNING: [assignee(data)],
        events.SLA_BREACHED: [grid_head(data), assignee(data)],
        # status changes with their own events above are told there; a rejection is told here
        events.CASE_STATUS_CHANGED: [resident(data)] if data.get("status") == "rejected" else [],
    }[event_type]
    chosen, seen = [], set()
    for recipient in wanted:
        if recipient is not None and recipient.key not in seen:
            seen.add(recipient.key)
            chosen.append((recipient, f"{event_type}.{recipient.role}"))
    return chosen
