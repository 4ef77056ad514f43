"""Event contracts between services.

Every event travels in the same envelope: ``event_id`` (the idempotency key of
the event itself), ``event_type``, ``occurred_at``, ``schema_version`` and the
``data`` whose shape the event type fixes. Consumers validate what they receive
with the same schemas producers use to build it.
"""
import uuid
from datetime import datetime, timezone

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

SCHEMA_VERSION = 1

REQUEST_RECEIVED = "request_received"
CASE_STATUS_CHANGED = "case_status_changed"
CASE_ASSIGNED = "case_assigned"
CASE_ESCALATED = "case_escalated"
CASE_MERGED = "case_merged"
CASE_CLOSED = "case_closed"
SLA_WARNING = "sla_warning"
SLA_BREACHED = "sla_breached"
FOLLOW_UP_REQUESTED = "follow_up_requested"
CAMPAIGN_DUE = "campaign_due"
STUDY_REMINDER_DUE = "study_reminder_due"
STUDY_EVENTS = (CAMPAIGN_DUE, STUDY_REMINDER_DUE)
VISIT_OVERDUE = "visit_overdue"
CARE_EVENTS = (VISIT_OVERDUE,)
NOTIFICATION_SENT = "notification_sent"
NOTIFICATION_FAILED = "notification_failed"

# Every case event carries the case as it stands (CaseEventData), so a consumer
# such as notify can decide recipients without asking routing.
CASE_EVENTS = (
    CASE_STATUS_CHANGED, CASE_ASSIGNED, CASE_ESCALATED, CASE_MERGED, CASE_CLOSED,
    SLA_WARNING, SLA_BREACHED, FOLLOW_UP_REQUESTED,
)

CASE_STATUSES = (
    "received", "assigned", "acknowledged", "in_progress", "resolved", "closed",
    "escalated", "reopened", "merged", "rejected", "returned",
)
LEVELS = ("grid", "community", "town", "department")


def utcnow():
    return datetime.now(timezone.utc)


class LocationSchema(Schema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)
    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)


# Mainland mobile (optionally +86) or landline with area code.
phone_number = validate.Regexp(
    r"^(?:(?:\+?86[- ]?)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$",
    error="Not a valid phone number: use a mainland mobile (13812345678) or a landline with area code (0591-24567890).",
)


class ReporterSchema(Schema):
    name = fields.String(validate=validate.Length(max=50))
    phone = fields.String(validate=phone_number)


class RequestReceivedData(Schema):
    """What routing needs to open a case from a resident's request."""

    request_id = fields.String(required=True)
    tracking_no = fields.String(required=True)
    channel = fields.String(required=True)
    source = fields.String(required=True)
    submitted_at = fields.AwareDateTime(required=True)
    received_at = fields.AwareDateTime(required=True)
    text = fields.String(required=True)
    category = fields.String(allow_none=True)
    grid_id = fields.String(allow_none=True)
    wechat_group_id = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    location = fields.Nested(LocationSchema, allow_none=True)
    reporter = fields.Nested(ReporterSchema, allow_none=True)
    media = fields.List(fields.String(), load_default=list)
    external_ref = fields.String(allow_none=True)


class PersonSchema(Schema):
    """A worker, grid head or department contact as events name them."""

    id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class DepartmentRefSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    contact = fields.Nested(PersonSchema, allow_none=True)


class CaseEventData(Schema):
    """A case as it stands after a change. ``request_id``/``tracking_no`` name the
    request the event concerns (for ``case_merged``, the request merged in)."""

    case_id = fields.String(required=True)
    request_id = fields.String(required=True)
    tracking_no = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    previous_status = fields.String(allow_none=True, validate=validate.OneOf(CASE_STATUSES))
    at = fields.AwareDateTime(required=True)
    version = fields.Integer(
        allow_none=True, load_default=None,
        metadata={"description": "The case's version after the change: changes of one case in the order they happened "
                                 "(``at`` comes from routing's clock, which other hosts' clocks cannot be compared with). "
                                 "Absent from events of routing before it carried it."},
    )
    grid_id = fields.String(allow_none=True)
    grid_name = fields.String(allow_none=True)
    community_id = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    category = fields.String(allow_none=True, metadata={"description": "The routing category the subclass belongs to."})
    category_name = fields.String(allow_none=True)
    subclass = fields.String(allow_none=True, load_default=None,
                             metadata={"description": "The taxonomy's subclass code (routing's taxonomy.yml)."})
    subclass_name = fields.String(allow_none=True, load_default=None)
    major = fields.String(allow_none=True, load_default=None, metadata={"description": "The subclass's major class code."})
    major_name = fields.String(allow_none=True, load_default=None)
    awaiting_dispatch = fields.Boolean(
        allow_none=True, load_default=None,
        metadata={"description": "The case waits in a dispatcher's queue (low classifier confidence, no grid, or returned)."},
    )
    return_reason = fields.String(
        allow_none=True, load_default=None,
        metadata={"description": "status returned (退单): wrong_grid, wrong_department, wrong_class or other."},
    )
    complexity = fields.String(allow_none=True)
    urgent = fields.Boolean(allow_none=True)
    level = fields.String(allow_none=True, validate=validate.OneOf(LEVELS))
    department = fields.Nested(DepartmentRefSchema, allow_none=True)
    assignee = fields.Nested(PersonSchema, allow_none=True)
    grid_head = fields.Nested(PersonSchema, allow_none=True)
    reporter = fields.Nested(ReporterSchema, allow_none=True)
    wechat_group_ids = fields.List(fields.String(), allow_none=True)
    reporter_count = fields.Integer(allow_none=True)
    summary = fields.String(allow_none=True, metadata={"description": "The start of the resident's words."})
    actor = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    resolution_due_at = fields.AwareDateTime(
        allow_none=True, load_default=None,
        metadata={"description": "When the case is due to be resolved (its resolution deadline at its current level) "
                                 "while it is open; null once resolved or closed. Absent from events of routing before it carried it."},
    )
    result = fields.String(
        allow_none=True, load_default=None,
        metadata={"description": "While the case stands resolved or closed: what was done, as the worker who resolved it "
                                 "wrote it, with every reporter's name of the case and every phone number masked (what "
                                 "residents read on their tracking pages). Null otherwise, and absent from events of "
                                 "routing before it carried it."},
    )
    # sla_warning / sla_breached: which clock and when it runs out
    sla_clock = fields.String(allow_none=True, validate=validate.OneOf(("first_response", "resolution")))
    due_at = fields.AwareDateTime(allow_none=True)
    follow_up_token = fields.String(
        allow_none=True, load_default=None,
        metadata={"description": "follow_up_requested: the one-time token of the resident's follow-up link "
                                 "(routing: POST /api/v1/follow-up/{token}); routing keeps only its digest."},
    )


class StudyContentRefSchema(Schema):
    content_id = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    summary = fields.String(allow_none=True)
    media = fields.List(fields.Dict(), load_default=list)


class StudyMemberRefSchema(Schema):
    member_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class StudyDispatchData(Schema):
    """Study material due in one grid's group (``campaign_due``), or a reminder to
    the grid's members who have not taken part yet (``study_reminder_due``)."""

    campaign_id = fields.String(required=True)
    round = fields.String(required=True, metadata={"description": "The occurrence of a repeating campaign (its due time)."})
    title = fields.String(required=True)
    grid_id = fields.String(required=True)
    grid_name = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    community_id = fields.String(allow_none=True)
    wechat_group_ids = fields.List(fields.String(), load_default=list)
    contents = fields.List(fields.Nested(StudyContentRefSchema), load_default=list)
    due_at = fields.AwareDateTime(required=True)
    reminder_number = fields.Integer(allow_none=True)
    final_reminder = fields.Boolean(allow_none=True)
    members = fields.List(fields.Nested(StudyMemberRefSchema), load_default=list)


class VisitOverdueData(Schema):
    """A priority resident (重点关爱对象) not visited by their due time: once per resident,
    due time and stage (``worker`` when it falls due, ``grid_head`` after a grace period
    if still not visited). Only what a notice needs: the name masked, no phone or address."""

    resident_id = fields.String(required=True)
    resident_name = fields.String(allow_none=True, metadata={"description": "Masked (张**): the worker reads the rest in care."})
    kinds = fields.List(fields.String(), load_default=list, metadata={"description": "Kind codes (living_alone …)."})
    kind_names = fields.List(fields.String(), load_default=list)
    grid_id = fields.String(required=True)
    grid_name = fields.String(allow_none=True)
    community_id = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    due_at = fields.AwareDateTime(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(("worker", "grid_head")))
    worker = fields.Nested(PersonSchema, allow_none=True, metadata={"description": "The worker responsible (id and name)."})
    grid_head = fields.Nested(PersonSchema, allow_none=True)


class NotificationData(Schema):
    """A notification delivered, or given up on after its last attempt."""

    notification_id = fields.String(required=True)
    source_event_id = fields.String(required=True)
    kind = fields.String(required=True)
    recipient_role = fields.String(required=True)
    channel = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("sent", "failed")))
    attempts = fields.Integer(required=True)
    case_id = fields.String(allow_none=True)
    tracking_no = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


DATA_SCHEMAS = {
    REQUEST_RECEIVED: RequestReceivedData,
    **{name: CaseEventData for name in CASE_EVENTS},
    CAMPAIGN_DUE: StudyDispatchData,
    STUDY_REMINDER_DUE: StudyDispatchData,
    VISIT_OVERDUE: VisitOverdueData,
    NOTIFICATION_SENT: NotificationData,
    NOTIFICATION_FAILED: NotificationData,
}


class EnvelopeSchema(Schema):
    class Meta:
        unknown = INCLUDE  # newer producers may add envelope fields

    event_id = fields.String(required=True)
    event_type = fields.String(required=True, validate=validate.OneOf(tuple(DATA_SCHEMAS)))
    occurred_at = fields.AwareDateTime(required=True)
    schema_version = fields.Integer(required=True, validate=validate.Range(min=1))
    data = fields.Dict(required=True)


# Built once: a marshmallow schema deep-copies its fields when made, which cost more
# than the dump or load itself on every event (schemas keep no state between calls).
WRITERS = {event_type: schema_cls() for event_type, schema_cls in DATA_SCHEMAS.items()}
READERS = {event_type: schema_cls(unknown=INCLUDE) for event_type, schema_cls in DATA_SCHEMAS.items()}
ENVELOPE = EnvelopeSchema()


def build_event(event_type, data, event_id=None, occurred_at=None):
    """The wire form of an event: validated, with its envelope."""
    schema = WRITERS[event_type]
    wire_data = schema.dump(data)
    errors = schema.validate(wire_data)
    if errors:
        raise ValidationError(errors)
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "event_type": event_type,
        "occurred_at": (occurred_at or utcnow()).isoformat(),
        "schema_version": SCHEMA_VERSION,
        "data": wire_data,
    }


def read_event(event_type, message):
    """The envelope and typed data of a received event; ``ValidationError`` names
    the bad field (``data.status``) so a dead letter says what was wrong."""
    envelope = ENVELOPE.load(message)
    if envelope["event_type"] != event_type:
        raise ValidationError({"event_type": [f"Expected {event_type!r}."]})
    try:
        envelope["data"] = READERS[event_type].load(envelope["data"])
    except ValidationError as error:
        raise ValidationError({"data": error.messages}) from error
    return envelope
