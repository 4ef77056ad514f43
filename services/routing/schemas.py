"""What comes into routing over HTTP and what goes out."""
from marshmallow import RAISE, Schema, fields, validate

from wangge.fields import page_number

from services.routing.lifecycle import FIVE_STEPS, TRANSITIONS

STATUSES = tuple(TRANSITIONS)
_id = validate.Length(min=1, max=64)
_note = validate.Length(max=2000)


class BodySchema(Schema):
    class Meta:
        unknown = RAISE


class PageSchema(BodySchema):
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class GridQuerySchema(PageSchema):
    town_id = fields.String(validate=_id)
    community_id = fields.String(validate=_id)


class PointQuerySchema(BodySchema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)
    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)


class CaseQuerySchema(PageSchema):
    grid_id = fields.String(validate=_id)
    town_id = fields.String(validate=_id)
    status = fields.String(validate=validate.OneOf(STATUSES))
    assignee = fields.String(validate=_id)
    overdue = fields.Boolean()
    triage = fields.Boolean()


class CaseChangeSchema(BodySchema):
    """A change to a case. Who makes it is the caller (their token's subject), never a field."""

    note = fields.String(validate=_note, load_default=None)


class NoteSchema(BodySchema):
    note = fields.String(required=True, validate=[validate.Length(min=1, max=2000)])


class TransitionSchema(CaseChangeSchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class AssignSchema(CaseChangeSchema):
    worker_id = fields.String(required=True, validate=_id)
    grid_id = fields.String(
        validate=_id, load_default=None,
        metadata={"description": "The worker's grid, when it is not the case's own: the case moves there (the command centre's to do)."},
    )


class EscalateSchema(CaseChangeSchema):
    department_id = fields.String(validate=_id, load_default=None)


class StepSchema(BodySchema):
    step = fields.String(required=True, validate=validate.OneOf(FIVE_STEPS))
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class PlaceSchema(CaseChangeSchema):
    grid_id = fields.String(required=True, validate=_id)


class FollowUpSchema(BodySchema):
    solved = fields.Boolean(required=True)
    satisfaction = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    note = fields.String(validate=_note, load_default=None)


class FollowUpRecordSchema(Schema):
    class Meta:
        ordered = True

    solved = fields.Boolean()
    satisfaction = fields.Integer()
    note = fields.String(allow_none=True)
    at = fields.AwareDateTime()


class FollowUpAnswerSchema(Schema):
    """The resident's answer as recorded, and where their request stands now (nothing about the people handling it)."""

    class Meta:
        ordered = True

    tracking_no = fields.String(required=True)
    status = fields.String(required=True)
    follow_up = fields.Nested(FollowUpRecordSchema, required=True)


class CentroidSchema(Schema):
    """The middle of a grid's area (WGS-84)."""

    lon = fields.Float()
    lat = fields.Float()


class GridSummarySchema(Schema):
    """A grid as listed: where it lies and its WeChat groups."""

    class Meta:
        ordered = True

    grid_id = fields.String(attribute="id")
    name = fields.String()
    town_id = fields.String()
    town = fields.String(attribute="town_name")
    community_id = fields.String()
    community = fields.String(attribute="community_name")
    centroid = fields.Nested(CentroidSchema, allow_none=True)
    wechat_groups = fields.List(fields.String())


class LeadSchema(Schema):
    """Who heads a community or a town: enough to know them by, nothing to reach them by."""

    id = fields.String()
    name = fields.String()


class GridDetailSchema(GridSummarySchema):
    """A grid with its head, workers, the heads of its community and town, buildings and area (a GeoJSON polygon)."""

    head = fields.Dict()
    workers = fields.List(fields.Dict())
    community_head = fields.Nested(LeadSchema, allow_none=True)
    town_head = fields.Nested(LeadSchema, allow_none=True)
    buildings = fields.List(fields.String())
    area = fields.Dict(allow_none=True)


class CaseSummarySchema(Schema):
    """A case as listed: where it stands, who has it and its deadlines; phone numbers in `text` masked."""

    class Meta:
        ordered = True

    case_id = fields.String(attribute="_id")
    tracking_no = fields.String()
    status = fields.String()
    level = fields.String()
    grid_id = fields.String(allow_none=True)
    grid_name = fields.String(allow_none=True)
    town_id = fields.String(allow_none=True)
    category = fields.String()
    complexity = fields.String()
    urgent = fields.Boolean()
    triage = fields.Boolean()
    assignee = fields.Dict(allow_none=True)
    reporter_count = fields.Integer()
    text = fields.String()
    opened_at = fields.AwareDateTime()
    status_at = fields.AwareDateTime()
    first_response_due = fields.AwareDateTime(attribute="sla.first_response.due_at")
    resolution_due = fields.AwareDateTime(attribute="sla.resolution.due_at")


class ReporterViewSchema(Schema):
    """A resident who reported the case: in full for its assignee and their leads, masked for others."""

    class Meta:
        ordered = True

    tracking_no = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    at = fields.AwareDateTime(allow_none=True)


class CaseDetailSchema(CaseSummarySchema):
    """A case in full: its timeline (who did what, when, in which role: `by`, `role`), the five steps,
    SLA clocks and follow-up. `version` counts its changes; every case event carries it. The residents
    who reported it (`reporters`) and phone numbers in `text` are in full for its assignee and their
    leads (grid head, community and town lead, county), masked for others."""

    request_ids = fields.List(fields.String())
    reporters = fields.List(fields.Nested(ReporterViewSchema))
    address = fields.String(allow_none=True)
    located_by = fields.String()
    keywords = fields.List(fields.String())
    department = fields.Dict(allow_none=True)
    grid_head = fields.Dict(allow_none=True)
    first_response_at = fields.AwareDateTime(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    five_steps = fields.List(fields.Dict())
    follow_up = fields.Nested(FollowUpRecordSchema, allow_none=True)
    sla = fields.Dict()
    timeline = fields.List(fields.Dict())
    version = fields.Integer()


class RegistryCountsSchema(Schema):
    class Meta:
        ordered = True

    towns = fields.Integer(required=True)
    communities = fields.Integer(required=True)
    grids = fields.Integer(required=True)
    departments = fields.Integer(required=True)


class RegistryLoadedSchema(Schema):
    """The edition now in force and how many records it holds."""

    class Meta:
        ordered = True

    version = fields.Integer(required=True)
    counts = fields.Nested(RegistryCountsSchema, required=True)


class CountyNameSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class RegistrySummarySchema(RegistryLoadedSchema):
    """The registry edition in force."""

    county = fields.Nested(CountyNameSchema, required=True)
    loaded_at = fields.AwareDateTime(required=True)


class PageAnswerSchema(Schema):
    """Where a page lies in the whole: ``total`` counts every match."""

    class Meta:
        ordered = True

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class GridPageSchema(PageAnswerSchema):
    """A page of grids, all from the registry edition named in ``version``: a reader paging
    through starts again when it changes."""

    version = fields.Integer(allow_none=True, required=True, metadata={"description": "null before any registry is loaded."})
    items = fields.List(fields.Nested(GridSummarySchema), required=True)


class CasePageSchema(PageAnswerSchema):
    """A page of cases, newest first."""

    items = fields.List(fields.Nested(CaseSummarySchema), required=True)


class WorkerCasesSchema(Schema):
    """A worker's open cases (at most 500), newest first; ``total`` counts them all."""

    class Meta:
        ordered = True

    items = fields.List(fields.Nested(CaseSummarySchema), required=True)
    total = fields.Integer(required=True)
