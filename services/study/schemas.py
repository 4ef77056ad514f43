"""What comes into study over HTTP and what goes out."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from wangge.events import phone_number
from wangge.fields import Moment, page_number

_id = validate.Length(min=1, max=64)
MEDIA_TYPES = ("picture", "audio", "video", "link")
SCOPES = ("all", "towns", "communities", "grids")
CHECKIN_KINDS = ("read", "attended", "commented")
SESSION_KINDS = ("online", "bench", "courtyard", "door_to_door")
MEMBER_KINDS = ("party_member", "resident")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class MediaSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(MEDIA_TYPES))
    url = fields.Url(required=True, schemes={"http", "https"})
    caption = fields.String(validate=validate.Length(max=200))


class ContentSchema(StrictSchema):
    """A study item: 学习资料 — text with picture and audio links."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(required=True, validate=validate.Length(min=1, max=50_000))
    media = fields.List(fields.Nested(MediaSchema), load_default=list, validate=validate.Length(max=50))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=30)), load_default=list, validate=validate.Length(max=20))
    author = fields.String(validate=validate.Length(max=100), load_default=None)
    team = fields.String(validate=validate.Length(max=100), load_default=None, metadata={"description": "The lecture team (宣讲队)."})
    editor = fields.String(validate=validate.Length(max=64), load_default=None)


class ContentQuerySchema(StrictSchema):
    tag = fields.String(validate=validate.Length(min=1, max=30))
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class TargetSchema(StrictSchema):
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    ids = fields.List(fields.String(validate=_id), load_default=list)

    @validates_schema
    def ids_match_scope(self, data, **kwargs):
        if data["scope"] == "all" and data["ids"]:
            raise ValidationError("Leave ids empty when the scope is all.", "ids")
        if data["scope"] != "all" and not data["ids"]:
            raise ValidationError(f"Name at least one of the {data['scope']}.", "ids")


class ScheduleSchema(StrictSchema):
    at = Moment(metadata={"description": "When to send, once (ISO 8601 with zone)."})
    rrule = fields.String(validate=validate.Length(min=5, max=300), metadata={"description": "RFC 5545 rule on the county's clock, e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0; FREQ at least HOURLY, no UNTIL (use until)."})
    start = Moment(metadata={"description": "The first moment the rule may fire (default: now; within a year of now)."})
    until = Moment()

    @validates_schema
    def one_kind(self, data, **kwargs):
        if ("at" in data) == ("rrule" in data):
            raise ValidationError("Give either at (once) or rrule (repeating).", "at")


class ReminderPolicySchema(StrictSchema):
    # the lower bound is CAMPAIGNS.MIN_REMINDER_HOURS, checked with the campaign
    after_hours = fields.Float(load_default=24, validate=validate.Range(min=0, min_inclusive=False, max=24 * 30))
    max = fields.Integer(load_default=2, validate=validate.Range(min=0, max=10))


class CampaignSchema(StrictSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    content_ids = fields.List(fields.String(validate=_id), required=True, validate=validate.Length(min=1, max=20))
    target = fields.Nested(TargetSchema, required=True)
    schedule = fields.Nested(ScheduleSchema, required=True)
    reminder = fields.Nested(ReminderPolicySchema, load_default=lambda: ReminderPolicySchema().load({}))


class MemberSchema(StrictSchema):
    member_id = fields.String(required=True, validate=_id)
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    grid_id = fields.String(required=True, validate=_id)
    kind = fields.String(load_default="resident", validate=validate.OneOf(MEMBER_KINDS))
    phone = fields.String(validate=phone_number, load_default=None)


class MemberImportSchema(StrictSchema):
    members = fields.List(fields.Nested(MemberSchema), required=True, validate=validate.Length(min=1, max=100_000))


class CheckinSchema(StrictSchema):
    campaign_id = fields.String(required=True, validate=_id)
    member_id = fields.String(required=True, validate=_id)
    kind = fields.String(required=True, validate=validate.OneOf(CHECKIN_KINDS))
    comment = fields.String(validate=validate.Length(max=2000), load_default=None)


class SessionSchema(StrictSchema):
    """An offline or online meeting (板凳会, 院落会, 线上学习会) run by a lecture team."""

    grid_id = fields.String(required=True, validate=_id)
    team = fields.String(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf(SESSION_KINDS))
    held_at = Moment(required=True)
    title = fields.String(validate=validate.Length(max=200), load_default=None)
    campaign_id = fields.String(validate=_id, load_default=None)
    attendees = fields.List(fields.String(validate=_id), load_default=list, validate=validate.Length(max=5000))


class AttendanceSchema(StrictSchema):
    attendees = fields.List(fields.String(validate=_id), required=True, validate=validate.Length(min=1, max=5000))


class ReportQuerySchema(StrictSchema):
    by = fields.String(load_default="grid", validate=validate.OneOf(("grid", "community", "town", "campaign")))
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))


class MissingQuerySchema(StrictSchema):
    grid_id = fields.String(required=True, validate=_id)
