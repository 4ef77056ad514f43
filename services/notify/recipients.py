"""Who hears about an event, and as what (the template kind).

Each recipient has a stable ``key`` (a person's registry id; for a resident,
the request's tracking number), which with the event id and the channel makes a
notification's identity: the same event never reaches the same person twice on
the same channel.
"""
import hashlib
from dataclasses import dataclass

from wangge import events

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
    return Recipient("resident", f"resident:{data['tracking_no']}", reporter.get("name"), reporter.get("phone"))


OPERATIONS = Recipient("ops", "ops", "运维值班")
OPS_ALERT = "ops_alert"


def alert_envelope(payload, now):
    """Alertmanager's notification as an event: one message per group and state
    (a repeat of the same firing group is recognised and not sent twice)."""
    alerts = [
        {"name": alert["labels"].get("alertname"), "severity": alert["labels"].get("severity"),
         "summary": alert["annotations"].get("summary") or alert["labels"].get("alertname"), "status": alert["status"]}
        for alert in payload["alerts"]
    ]
    identity = "|".join([payload["groupKey"], payload["status"], *sorted(f"{a['fingerprint']}@{a['startsAt']}" for a in payload["alerts"])])
    return {
        "event_id": hashlib.sha1(identity.encode("utf-8")).hexdigest(), "event_type": OPS_ALERT, "occurred_at": now,
        "data": {"status": payload["status"], "alerts": alerts},
    }


def for_study_event(event_type, data):
    """[(recipient, template kind)]: the grid's groups get the material; members
    who have not taken part get the reminder."""
    if event_type == events.CAMPAIGN_DUE:
        chosen = [Recipient("grid_group", f"group:{group}", data.get("grid_name"), group=group) for group in data.get("wechat_group_ids") or []]
    else:
        chosen = [Recipient("member", member["member_id"], member.get("name"), member.get("phone"))
                  for member in data.get("members") or [] if member.get("phone")]
    return [(recipient, f"{event_type}.{recipient.role}") for recipient in chosen]


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
