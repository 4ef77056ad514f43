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


class MemberImportQuerySchema(StrictSchema):
    replace = fields.Boolean(load_default=False, metadata={
        "description": "Overwrite members stored before with the details of this import; without it such an import is refused (409)."})


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


class CampaignGridQuerySchema(StrictSchema):
    """One grid of the campaign's."""

    grid_id = fields.String(required=True, validate=_id)


# -- what goes out --------------------------------------------------------------------

class ContentVersionSchema(Schema):
    """A version of a study item."""

    class Meta:
        ordered = True

    version = fields.Integer(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    media = fields.List(fields.Nested(MediaSchema))
    tags = fields.List(fields.String())
    author = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    editor = fields.String(allow_none=True)
    updated_at = fields.AwareDateTime()


class ContentViewSchema(ContentVersionSchema):
    """A study item; read alone (and as answered to a create or an edit), with its earlier
    versions in ``history``, oldest first."""

    content_id = fields.String(required=True, attribute="_id")
    created_at = fields.AwareDateTime()
    history = fields.List(fields.Nested(ContentVersionSchema))


class ContentPageSchema(Schema):
    class Meta:
        ordered = True

    items = fields.List(fields.Nested(ContentViewSchema), required=True)
    total = fields.Integer(required=True)


class CampaignViewSchema(Schema):
    """A campaign: what it sends, to whom, when; ``grids`` counts the grids it targets."""

    class Meta:
        ordered = True

    campaign_id = fields.String(required=True, attribute="_id")
    title = fields.String(required=True)
    content_ids = fields.List(fields.String(), required=True)
    target = fields.Nested(TargetSchema, required=True)
    schedule = fields.Nested(ScheduleSchema, required=True)
    reminder = fields.Nested(ReminderPolicySchema, required=True)
    next_round_at = fields.AwareDateTime(allow_none=True, metadata={"description": "null once no round is left."})
    last_round_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    grids = fields.Integer(required=True)


class DispatchCountSchema(Schema):
    kind = fields.String(required=True, metadata={"description": "campaign_due or reminder."})
    state = fields.String(required=True)
    count = fields.Integer(required=True)


class CampaignDetailSchema(CampaignViewSchema):
    """A campaign with its dispatches counted by kind and state."""

    dispatches = fields.List(fields.Nested(DispatchCountSchema), required=True)


class CampaignListSchema(Schema):
    """The latest campaigns (at most 100), newest first."""

    items = fields.List(fields.Nested(CampaignViewSchema), required=True)


class ReportRowSchema(Schema):
    """Participation (参学率) of one grid, community or town, or of the whole campaign;
    the row names it by the level's id (``grid_id``, ``community_id``, ``town_id`` or ``campaign_id``)."""

    class Meta:
        ordered = True

    grid_id = fields.String()
    grid_name = fields.String(allow_none=True)
    community_id = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    campaign_id = fields.String()
    members = fields.Integer(required=True)
    participants = fields.Integer(required=True)
    rate = fields.Float(required=True, allow_none=True, metadata={"description": "participants / members; null without members."})


class CampaignReportSchema(Schema):
    class Meta:
        ordered = True

    campaign_id = fields.String(required=True)
    by = fields.String(required=True)
    rows = fields.List(fields.Nested(ReportRowSchema), required=True)


class MissingMemberSchema(Schema):
    member_id = fields.String(required=True, attribute="_id")
    name = fields.String(required=True)
    kind = fields.String(required=True)


class MissingMembersSchema(Schema):
    """The 不掉队 list: the grid's members who have not taken part."""

    class Meta:
        ordered = True

    campaign_id = fields.String(required=True)
    grid_id = fields.String(required=True)
    members = fields.List(fields.Nested(MissingMemberSchema), required=True)


class ParticipantSchema(MissingMemberSchema):
    kinds = fields.List(fields.String(validate=validate.OneOf(CHECKIN_KINDS)), required=True,
                        metadata={"description": "How they took part: read, attended (a session of the campaign), commented."})
    first_at = fields.AwareDateTime(required=True, metadata={"description": "When they first took part."})


class ParticipantsSchema(Schema):
    """A grid's members who have taken part in the campaign (the other side of the 不掉队 list)."""

    class Meta:
        ordered = True

    campaign_id = fields.String(required=True)
    grid_id = fields.String(required=True)
    members = fields.List(fields.Nested(ParticipantSchema), required=True)


class MembersImportedSchema(Schema):
    """How many rows were imported: new members, members whose details changed (with
    ``replace=true``), and members stored before exactly as imported."""

    class Meta:
        ordered = True

    imported = fields.Integer(required=True)
    created = fields.Integer(required=True)
    changed = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)


class CheckinRecordedSchema(Schema):
    """A check-in; ``new`` is false when it was recorded before."""

    class Meta:
        ordered = True

    campaign_id = fields.String(required=True)
    member_id = fields.String(required=True)
    kind = fields.String(required=True)
    new = fields.Boolean(required=True)


class SessionViewSchema(Schema):
    """A meeting with its attendance."""

    class Meta:
        ordered = True

    session_id = fields.String(required=True, attribute="_id", data_key="_id")
    grid_id = fields.String(required=True)
    team = fields.String(required=True)
    kind = fields.String(required=True)
    held_at = fields.AwareDateTime(required=True)
    title = fields.String(allow_none=True)
    campaign_id = fields.String(allow_none=True)
    attendees = fields.List(fields.String(), required=True)
    created_at = fields.AwareDateTime(required=True)


class TeamSchema(Schema):
    class Meta:
        ordered = True

    team = fields.String(required=True)
    sessions = fields.Integer(required=True)
    attendance = fields.Integer(required=True)
    kinds = fields.List(fields.String(), required=True)


class TeamReportSchema(Schema):
    """Per lecture team (宣讲队): sessions held and attendance."""

    teams = fields.List(fields.Nested(TeamSchema), required=True)
