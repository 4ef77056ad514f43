"""What comes into care over HTTP and what goes out."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from wangge.events import phone_number
from wangge.fields import Moment, page_number

from services.care.schedule import KIND_NAMES, KINDS

_id = validate.Length(min=1, max=64)
LEVELS = ("grid", "community", "town")
TODO_STATUSES = ("planned", "in_progress", "done", "postponed")
KINDS_DESCRIPTION = "Kinds of priority resident: " + ", ".join(f"{code} ({name})" for code, name in KIND_NAMES.items()) + "."


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


def not_blank(value):
    if not value.strip():
        raise ValidationError("Must not be blank.")


def distinct(values):
    if len(set(values)) != len(values):
        raise ValidationError("Each kind once.")


class ChangeSchema(StrictSchema):
    """A change: only the fields given change, and it names at least one."""

    nothing_given = ("Give at least one field to change.", "body")  # (message, the field it is reported under)

    @validates_schema
    def at_least_one_field(self, data, **kwargs):
        if not data:
            raise ValidationError(*self.nothing_given)


NAME_RULES = [validate.Length(min=1, max=50), not_blank]
ADDRESS_RULES = [validate.Length(min=1, max=200), not_blank]
KINDS_RULES = [validate.Length(min=1, max=len(KINDS)), distinct]
NOTES_RULES = validate.Length(max=2000)


class ResidentSchema(StrictSchema):
    """A priority resident (重点关爱对象) of a grid."""

    name = fields.String(required=True, validate=NAME_RULES)
    phone = fields.String(validate=phone_number, load_default=None)
    grid_id = fields.String(required=True, validate=_id)
    address = fields.String(required=True, validate=ADDRESS_RULES)
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), required=True, validate=KINDS_RULES, metadata={"description": KINDS_DESCRIPTION})
    notes = fields.String(validate=NOTES_RULES, load_default=None)
    last_visited_at = Moment(load_default=None, metadata={"description": "The last home visit before registration; the next is due one interval after it (or after registration)."})
    worker_id = fields.String(validate=_id, load_default=None, metadata={
        "description": "The grid's worker who looks after them (default: the on-duty worker with the fewest priority residents)."})


class ResidentChangeSchema(ChangeSchema):
    """What changed about a priority resident; only the fields given change. A new
    ``grid_id`` moves them, their open due time with them, to that grid (its worker:
    ``worker_id``, or the one with the fewest priority residents). New ``kinds`` set
    the interval from the next visit on: the due time already set stands."""

    name = fields.String(validate=NAME_RULES)
    phone = fields.String(validate=phone_number, allow_none=True)
    address = fields.String(validate=ADDRESS_RULES)
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), validate=KINDS_RULES, metadata={"description": KINDS_DESCRIPTION})
    notes = fields.String(validate=NOTES_RULES, allow_none=True)
    grid_id = fields.String(validate=_id)
    worker_id = fields.String(validate=_id)


END_REASONS = ("moved_away", "deceased", "declined", "no_longer_eligible")


class CareEndingSchema(StrictSchema):
    """Why a resident's care ends. Their name, phone, address and notes, and the notes
    of their visits, are erased; what the visit indicators count (dates, grid, the
    tracking numbers of the needs filed) stays."""

    reason = fields.String(required=True, validate=validate.OneOf(END_REASONS), metadata={"description": ", ".join(END_REASONS)})


class CareEndedSchema(Schema):
    class Meta:
        ordered = True

    resident_id = fields.String(required=True, attribute="_id")
    grid_id = fields.String(required=True)
    reason = fields.String(required=True)
    ended_at = fields.AwareDateTime(required=True)
    visits_erased = fields.Integer(required=True, metadata={"description": "Visits whose notes and needs' words were erased."})


class ResidentQuerySchema(StrictSchema):
    grid_id = fields.String(validate=_id, metadata={"description": "Required except for the command centre and departments."})
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class VisitSchema(StrictSchema):
    """A home visit (入户走访); each of ``needs`` is filed with intake as a request (channel ``visit``)."""

    resident_id = fields.String(required=True, validate=_id)
    visited_at = Moment(required=True)
    by = fields.String(validate=validate.Length(min=1, max=64), load_default=None, metadata={"description": "Who visited (default: the caller)."})
    notes = fields.String(required=True, validate=validate.Length(max=5000))
    needs = fields.List(fields.String(validate=[validate.Length(min=1, max=1000), not_blank]), load_default=list, validate=validate.Length(max=10),
                        metadata={"description": "Needs found on the visit, in the resident's words: each becomes a request."})


class PeriodQuerySchema(StrictSchema):
    by = fields.String(required=True, validate=validate.OneOf(LEVELS))
    from_ = fields.Date(required=True, data_key="from", metadata={"description": "The first day (county time), YYYY-MM-DD."})
    to = fields.Date(required=True, metadata={"description": "The last day, included."})

    @validates_schema
    def in_order(self, data, **kwargs):
        if data["to"] < data["from_"]:
            raise ValidationError("Must not be before from.", "to")
        if (data["to"] - data["from_"]).days > 366 * 5:
            raise ValidationError("At most five years.", "to")
        if data["from_"].year < 2000 or data["to"].year >= 2100:
            raise ValidationError("Must be between 2000 and 2099.", "from")


class ParticipantSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    phone = fields.String(validate=phone_number, load_default=None)


class ActivitySchema(StrictSchema):
    """A volunteer activity (志愿服务) of a grid, or of a whole community."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    grid_id = fields.String(validate=_id, load_default=None)
    community_id = fields.String(validate=_id, load_default=None)
    starts_at = Moment(required=True)
    hours = fields.Float(required=True, validate=validate.Range(min=0, max=24, min_inclusive=False), allow_nan=False)
    participants = fields.List(fields.Nested(ParticipantSchema), required=True, validate=validate.Length(min=1, max=2000))

    @validates_schema
    def one_place(self, data, **kwargs):
        if (data["grid_id"] is None) == (data["community_id"] is None):
            raise ValidationError("Give either grid_id or community_id.", "grid_id")


class TodoSchema(StrictSchema):
    """An item of the public to-do list (为民办事清单). Everything here is public: write it for residents."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    area = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={"description": "Where, in words (南门社区南湖花园)."})
    town_id = fields.String(required=True, validate=_id)
    community_id = fields.String(validate=_id, load_default=None)
    owner_department = fields.String(required=True, validate=validate.Length(min=1, max=100), metadata={"description": "Who is responsible."})
    promised_by = fields.Date(required=True, metadata={"description": "The day it is promised for."})
    status = fields.String(load_default="planned", validate=validate.OneOf(TODO_STATUSES))
    progress_notes = fields.String(load_default="", validate=validate.Length(max=2000))


class TodoChangeSchema(ChangeSchema):
    """What changes of an item (progress, most often); each change is kept in its history."""

    nothing_given = ("Say what changes.", "status")

    title = fields.String(validate=validate.Length(min=1, max=200))
    area = fields.String(validate=validate.Length(min=1, max=200))
    owner_department = fields.String(validate=validate.Length(min=1, max=100))
    promised_by = fields.Date()
    status = fields.String(validate=validate.OneOf(TODO_STATUSES))
    progress_notes = fields.String(validate=validate.Length(max=2000))


class PublicTodoQuerySchema(StrictSchema):
    town_id = fields.String(validate=_id)


# -- what goes out ----------------------------------------------------------------------

class NeedSchema(Schema):
    class Meta:
        ordered = True

    text = fields.String(allow_none=True, metadata={"description": "null in the masked view."})
    tracking_no = fields.String(allow_none=True, metadata={"description": "The request it was filed as (null until intake took it)."})
    request_id = fields.String(allow_none=True)


class VisitViewSchema(Schema):
    """A home visit; the needs found, each with the request it was filed as."""

    class Meta:
        ordered = True

    visit_id = fields.String(required=True, attribute="_id")
    resident_id = fields.String(required=True)
    grid_id = fields.String(required=True)
    visited_at = fields.AwareDateTime(required=True)
    by = fields.String(required=True)
    recorded_by = fields.String(required=True)
    notes = fields.String(allow_none=True, metadata={"description": "null in the masked view."})
    needs = fields.List(fields.Nested(NeedSchema), required=True)
    created_at = fields.AwareDateTime(required=True)


class VisitRecordedSchema(VisitViewSchema):
    """The visit as recorded, and when the resident is next due."""

    next_visit_due = fields.AwareDateTime(allow_none=True)


class ResidentViewSchema(Schema):
    """A priority resident: in full for their grid's people and the county, masked for departments."""

    class Meta:
        ordered = True

    resident_id = fields.String(required=True, attribute="_id")
    name = fields.String(required=True)
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    kinds = fields.List(fields.String(), required=True)
    kind_names = fields.List(fields.String(), required=True)
    grid_id = fields.String(required=True)
    grid_name = fields.String(allow_none=True)
    community_id = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    worker_id = fields.String(allow_none=True, metadata={"description": "The grid worker who looks after them."})
    interval_days = fields.Float(required=True, metadata={"description": "Days between visits (the most frequent of their kinds)."})
    last_visited_at = fields.AwareDateTime(allow_none=True)
    next_visit_due = fields.AwareDateTime(required=True)
    overdue = fields.Boolean(required=True)
    days_overdue = fields.Integer(required=True)
    registered_at = fields.AwareDateTime(required=True)
    masked = fields.Boolean(required=True, metadata={"description": "true: name and phone masked, no address or notes."})


class ResidentDetailSchema(ResidentViewSchema):
    """A resident with their latest visits (at most 20), newest first."""

    visits = fields.List(fields.Nested(VisitViewSchema), required=True)


class ResidentCreatedSchema(Schema):
    class Meta:
        ordered = True

    resident_id = fields.String(required=True)
    worker_id = fields.String(allow_none=True)
    next_visit_due = fields.AwareDateTime(required=True)


class ResidentPageSchema(Schema):
    class Meta:
        ordered = True

    items = fields.List(fields.Nested(ResidentViewSchema), required=True)
    total = fields.Integer(required=True)


class IndicatorRowSchema(Schema):
    """Visits that fell due in the period in one grid, community or town, and those made by their due time;
    the row names the area by the level's id (``grid_id``, ``community_id`` or ``town_id``)."""

    class Meta:
        ordered = True

    grid_id = fields.String()
    community_id = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    visits_due = fields.Integer(required=True)
    visits_on_time = fields.Integer(required=True)


class IndicatorsSchema(Schema):
    rows = fields.List(fields.Nested(IndicatorRowSchema), required=True)


class ActivityRecordedSchema(Schema):
    """A volunteer activity as recorded (its participants counted, not listed)."""

    class Meta:
        ordered = True

    activity_id = fields.String(required=True, attribute="_id")
    title = fields.String(required=True)
    grid_id = fields.String(allow_none=True)
    community_id = fields.String(required=True)
    town_id = fields.String(required=True)
    starts_at = fields.AwareDateTime(required=True)
    hours = fields.Float(required=True)
    participant_count = fields.Integer(required=True)


class VolunteerRowSchema(Schema):
    """Activities that started in the period in one grid, community or town, their participants, and
    volunteer hours (each activity's hours times its participants). By grid, a community's own activities are left out."""

    class Meta:
        ordered = True

    grid_id = fields.String()
    community_id = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    activities = fields.Integer(required=True)
    participants = fields.Integer(required=True)
    hours = fields.Float(required=True)


class VolunteerReportSchema(Schema):
    rows = fields.List(fields.Nested(VolunteerRowSchema), required=True)


class TodoHistorySchema(Schema):
    class Meta:
        ordered = True

    at = fields.AwareDateTime(required=True)
    status = fields.String(required=True)
    status_words = fields.String(required=True)
    progress_notes = fields.String(required=True)


class PublicTodoSchema(Schema):
    """An item of the to-do list as anyone reads it: no staff names, phone numbers masked."""

    class Meta:
        ordered = True

    item_id = fields.String(required=True)
    title = fields.String(required=True)
    area = fields.String(required=True)
    town_id = fields.String(required=True)
    community_id = fields.String(allow_none=True)
    owner_department = fields.String(required=True)
    promised_by = fields.Date(required=True)
    status = fields.String(required=True)
    status_words = fields.String(required=True, metadata={"description": "未开始, 办理中, 已办结 or 已延期."})
    progress_notes = fields.String(required=True)
    updated_at = fields.AwareDateTime(required=True)
    history = fields.List(fields.Nested(TodoHistorySchema), required=True)


class PublicTodoListSchema(Schema):
    """The to-do list (at most 500 items), by promised day."""

    items = fields.List(fields.Nested(PublicTodoSchema), required=True)
