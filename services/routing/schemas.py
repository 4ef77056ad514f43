"""What comes into routing over HTTP and what goes out."""
from datetime import date

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from wangge.fields import Moment, page_number

from services.routing import indicators
from services.routing.dispatch import RETURN_REASONS, WAIT_REASONS
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
    awaiting_dispatch = fields.Boolean()
    subclass = fields.String(validate=_id)
    major = fields.String(validate=_id)


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


class ReturnSchema(BodySchema):
    """退单: why the case is not the caller's. It goes to a dispatcher's queue."""

    reason = fields.String(required=True, validate=validate.OneOf(tuple(RETURN_REASONS)),
                           metadata={"description": "; ".join(f"{code}: {words}" for code, words in RETURN_REASONS.items())})
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                         metadata={"description": "What the dispatcher should know: whose it is, in your view."})


class DispatchSchema(CaseChangeSchema):
    """派遣 / 改派: where a dispatcher sends the case, and its class if it was wrong. Name a
    grid (optionally which of its workers) or a department; with neither, the case goes to
    its own grid's on-duty worker."""

    subclass = fields.String(validate=_id, load_default=None, metadata={"description": "The taxonomy's subclass code, to correct the class."})
    grid_id = fields.String(validate=_id, load_default=None)
    worker_id = fields.String(validate=_id, load_default=None)
    department_id = fields.String(validate=_id, load_default=None)

    @validates_schema
    def one_target(self, data, **kwargs):
        if data.get("department_id") and (data.get("grid_id") or data.get("worker_id")):
            raise ValidationError("Send the case to a grid or to a department, not both.", "department_id")


class DispatchQueueQuerySchema(PageSchema):
    town_id = fields.String(validate=_id)
    reason = fields.String(validate=validate.OneOf(WAIT_REASONS))


class LabelledExampleQuerySchema(PageSchema):
    since = Moment(metadata={"description": "Only decisions made at or after this moment (ISO 8601 with offset)."})
    per_page = fields.Integer(load_default=500, validate=validate.Range(min=1, max=5000))


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


class ReportedPlaceSchema(Schema):
    """Where the resident said the problem is (WGS-84), as filed."""

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


class MyGridSchema(GridSummarySchema):
    """A grid the caller heads or works in."""

    role = fields.String(required=True, validate=validate.OneOf(("grid_head", "grid_worker")),
                         metadata={"description": "What the caller is in this grid: its head, or one of its workers."})
    on_duty = fields.Boolean(allow_none=True, metadata={"description": "A worker's duty as the registry has it; null for the head."})


class MyGridsSchema(Schema):
    """The grids the signed-in staff member heads or works in (none without a grid role), by grid id."""

    class Meta:
        ordered = True

    subject = fields.String(required=True)
    version = fields.Integer(allow_none=True, required=True, metadata={"description": "The registry edition; null before any is loaded."})
    items = fields.List(fields.Nested(MyGridSchema), required=True)


class DepartmentViewSchema(Schema):
    """A functional department (职能部门) cases can be dispatched or escalated to."""

    class Meta:
        ordered = True

    department_id = fields.String(required=True, attribute="id")
    name = fields.String(required=True)
    categories = fields.List(fields.String(), required=True, metadata={"description": "The routing categories it handles."})
    contact = fields.Nested(LeadSchema, allow_none=True, metadata={"description": "Who answers for it (name only)."})


class DepartmentListSchema(Schema):
    """The registry's departments, by id."""

    class Meta:
        ordered = True

    version = fields.Integer(allow_none=True, required=True, metadata={"description": "The registry edition; null before any is loaded."})
    items = fields.List(fields.Nested(DepartmentViewSchema), required=True)


class MapGridPropertiesSchema(Schema):
    """A grid on the map: where it belongs and its cases now."""

    class Meta:
        ordered = True

    grid_id = fields.String(required=True)
    name = fields.String(required=True)
    town_id = fields.String(required=True)
    town = fields.String(allow_none=True)
    community_id = fields.String(required=True)
    community = fields.String(allow_none=True)
    centroid = fields.Nested(CentroidSchema, allow_none=True)
    open = fields.Integer(required=True, metadata={"description": "Open cases of the grid the caller sees."})
    overdue = fields.Integer(required=True, metadata={"description": "Of open, those past a deadline (as `overdue=true` lists them)."})


class GridFeatureSchema(Schema):
    """A grid as a GeoJSON Feature: its area (a polygon, WGS-84), or null geometry when the registry has none."""

    class Meta:
        ordered = True

    type = fields.String(required=True, validate=validate.OneOf(("Feature",)))
    id = fields.String(required=True, metadata={"description": "The grid's id."})
    geometry = fields.Dict(required=True, allow_none=True)
    properties = fields.Nested(MapGridPropertiesSchema, required=True)


class UnplacedTownCountsSchema(Schema):
    """A town's open cases in none of its grids yet (waiting for a dispatcher to place them)."""

    class Meta:
        ordered = True

    town_id = fields.String(required=True)
    open = fields.Integer(required=True, metadata={"description": "Open cases of the town in no grid that the caller sees."})
    overdue = fields.Integer(required=True, metadata={"description": "Of open, those past a deadline."})


class GridMapSchema(Schema):
    """Every grid of the caller's area, and those holding cases the caller sees, as a GeoJSON
    FeatureCollection (RFC 7946) with open and overdue cases in each feature's properties;
    a town's cases in no grid yet are in ``unplaced_by_town`` (a foreign member), so a town's
    total is its grids' counts and its own."""

    class Meta:
        ordered = True

    type = fields.String(required=True, validate=validate.OneOf(("FeatureCollection",)))
    version = fields.Integer(allow_none=True, required=True, metadata={"description": "The registry edition of the areas; null before any is loaded."})
    features = fields.List(fields.Nested(GridFeatureSchema), required=True)
    unplaced_by_town = fields.List(fields.Nested(UnplacedTownCountsSchema), required=True, metadata={
        "description": "Per town, its open and overdue cases in no grid yet (towns with none left out)."})


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
    category_name = fields.String(allow_none=True)
    subclass = fields.String(allow_none=True, metadata={"description": "The taxonomy's subclass code (GET /api/v1/taxonomy)."})
    subclass_name = fields.String(allow_none=True)
    major = fields.String(allow_none=True)
    major_name = fields.String(allow_none=True)
    complexity = fields.String()
    urgent = fields.Boolean()
    triage = fields.Boolean()
    awaiting_dispatch = fields.Boolean(metadata={"description": "It waits in a dispatcher's queue (see `dispatch`)."})
    return_count = fields.Integer(load_default=0, dump_default=0)
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
    location = fields.Nested(ReportedPlaceSchema, allow_none=True, metadata={
        "description": "The place the resident gave (the browser's location, with consent), if any; the case page's map."})
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
    classification = fields.Nested(lambda: ClassificationSchema(), allow_none=True)
    dispatch = fields.Nested(lambda: DispatchStateSchema(), allow_none=True)
    returns = fields.List(fields.Dict(), metadata={"description": "Each 退单: reason, note, by, role, at, and whom it left."})


class CandidateSchema(Schema):
    class Meta:
        ordered = True

    subclass = fields.String()
    major = fields.String()
    name = fields.String()
    probability = fields.Float()


class ClassificationSchema(Schema):
    """How routing classified the request: the model's top three with their probabilities,
    the threshold a case is held to, and whether it was confident enough to dispatch."""

    class Meta:
        ordered = True

    model = fields.String(allow_none=True)
    subclass = fields.String()
    probability = fields.Float()
    candidates = fields.List(fields.Nested(CandidateSchema))
    threshold = fields.Float()
    confident = fields.Boolean()
    hinted = fields.String(allow_none=True)
    chosen = fields.String()


class DispatchStateSchema(Schema):
    """Why and where a case waits for a dispatcher."""

    class Meta:
        ordered = True

    reason = fields.String(metadata={"description": ", ".join(WAIT_REASONS)})
    queue = fields.String(metadata={"description": "town (its town lead dispatches) or county (the command centre)"})
    town_id = fields.String(allow_none=True)
    since = fields.AwareDateTime()
    return_reason = fields.String(allow_none=True)


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


class QueuedCaseSchema(CaseSummarySchema):
    """A case waiting for a dispatcher, with the classifier's suggestions and, if it was
    returned, the last return."""

    classification = fields.Nested(ClassificationSchema, allow_none=True)
    dispatch = fields.Nested(DispatchStateSchema)
    last_return = fields.Dict(allow_none=True)


class DispatchQueuePageSchema(PageAnswerSchema):
    """The cases waiting for the caller to dispatch them, longest waiting first."""

    items = fields.List(fields.Nested(QueuedCaseSchema), required=True)


class LabelledExampleSchema(Schema):
    """A class a dispatcher confirmed (a doubtful classification) or corrected, for the
    corpus; phone numbers and reporters' names in ``text`` masked."""

    class Meta:
        ordered = True

    case_id = fields.String(attribute="_id")
    text = fields.String()
    subclass = fields.String()
    predicted = fields.String(allow_none=True)
    probability = fields.Float(allow_none=True)
    model = fields.String(allow_none=True)
    kind = fields.String(metadata={"description": "confirmed or corrected"})
    at = fields.AwareDateTime()


class LabelledExamplePageSchema(PageAnswerSchema):
    items = fields.List(fields.Nested(LabelledExampleSchema), required=True)


class SubclassViewSchema(Schema):
    class Meta:
        ordered = True

    code = fields.String()
    name = fields.String()
    description = fields.String()
    examples = fields.List(fields.String())
    # words that point to it: Open311's service keywords
    keywords = fields.List(fields.String())
    department = fields.String()
    complexity = fields.String()
    urgent = fields.Boolean()


class MajorClassViewSchema(Schema):
    class Meta:
        ordered = True

    code = fields.String()
    name = fields.String()
    standard = fields.String(allow_none=True)
    subclasses = fields.List(fields.Nested(SubclassViewSchema))


class TaxonomyViewSchema(Schema):
    """The taxonomy routing classifies into: major classes with their subclasses, in order."""

    class Meta:
        ordered = True

    version = fields.Integer()
    departments = fields.Dict(keys=fields.String(), values=fields.String())
    majors = fields.List(fields.Nested(MajorClassViewSchema))


# -- the scorecard (考核指标) ---------------------------------------------------------

_days = validate.Range(min=date(2000, 1, 1), max=date(2099, 12, 31))


class IndicatorQuerySchema(BodySchema):
    """A period as ``from`` and ``to`` (days, both included), or as ``period`` (the day,
    week, month or quarter holding ``at``, by default today) on the county's clock."""

    by = fields.String(required=True, validate=validate.OneOf(indicators.LEVELS))
    from_ = fields.Date(data_key="from", validate=_days)
    to = fields.Date(validate=_days)
    period = fields.String(validate=validate.OneOf(indicators.PERIODS))
    at = fields.Date(validate=_days)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))

    @validates_schema
    def one_way_to_name_the_period(self, data, **kwargs):
        ranged = "from_" in data or "to" in data
        if ranged == ("period" in data):
            raise ValidationError("Give from and to, or period.", "period")
        if ranged and not ("from_" in data and "to" in data):
            raise ValidationError("Give both from and to.", "to" if "from_" in data else "from")
        if "at" in data and "period" not in data:
            raise ValidationError("at goes with period.", "at")
        if ranged and data["to"] < data["from_"]:
            raise ValidationError("The period ends before it starts.", "to")
        if ranged and (data["to"] - data["from_"]).days >= indicators.MAX_DAYS:
            raise ValidationError(f"A period is at most {indicators.MAX_DAYS} days.", "to")


def _count(description):
    return fields.Integer(required=True, metadata={"description": description})


def _rate(description):
    return fields.Float(required=True, allow_none=True, metadata={"description": f"{description}; null when the denominator is 0."})


class ScorecardRowSchema(Schema):
    """One grid, community, town, department or worker in the period, named by the level's
    id (``grid_id``, ``community_id``, ``town_id``, ``department_id`` or ``worker_id``).
    The README's "Scorecard: 考核指标" section states every formula."""

    class Meta:
        ordered = True

    grid_id = fields.String()
    community_id = fields.String()
    town_id = fields.String()
    department_id = fields.String()
    worker_id = fields.String()
    received = _count("Cases opened in the period.")
    closed = _count("Cases closed in the period (and still closed).")
    due_to_close = _count("Cases that fell due to close (应结案) in the period: their deadline (the first one, if deferred) "
                          "or their closure passed in it, whichever came first; rejected cases owe no closure.")
    deferred = _count("Of due_to_close, cases whose deadline a lead deferred (延期).")
    due_closed = _count("Of due_to_close less deferred, cases closed by the end of the period.")
    closed_on_time = _count("Of due_closed, cases resolved by their deadline with no resolution breach on record.")
    first_responded_on_time = _count("Of received, cases answered before any first-response breach.")
    reopened = _count("Cases reopened (返工) in the period.")
    escalated = _count("Of received, cases escalated at least once.")
    followed_up = _count("Of closed, cases whose resident answered the follow-up of its last resolution (回访).")
    answered = _count("Follow-up answers given in the period with a satisfaction.")
    satisfied = _count("Of answered, satisfaction of 4 or 5.")
    dispatched = _count("Of received, cases that reached a holder.")
    misdispatched = _count("Of dispatched, cases returned as not theirs (退单) or sent on in another class (改派).")
    merged = _count("Requests merged into a case as duplicates in the period.")
    rejected = _count("Cases rejected in the period.")
    handling_hours = fields.Float(required=True, metadata={"description": "Hours from opening to resolution, summed over closed."})
    closing_rate = _rate("结案率: due_closed / (due_to_close − deferred)")
    closed_on_time_rate = _rate("按期结案率: closed_on_time / (due_to_close − deferred)")
    first_response_on_time_rate = _rate("first_responded_on_time / received")
    rework_rate = _rate("返工率: reopened / closed")
    escalation_rate = _rate("escalated / received")
    follow_up_rate = _rate("回访率: followed_up / closed")
    satisfaction_rate = _rate("满意率: satisfied / answered")
    accurate_dispatch_rate = _rate("准确派遣率: 1 − misdispatched / dispatched")
    average_handling_hours = _rate("handling_hours / closed")
    visits_due = fields.Integer(metadata={"description": "From care, when it answers: visits due in the period."})
    visits_on_time = fields.Integer(metadata={"description": "From care: of visits_due, made on time."})
    visit_rate = fields.Float(allow_none=True, metadata={"description": "visits_on_time / visits_due."})
    study_members = fields.Integer(metadata={"description": "From study, when it answers: members targeted by the campaigns "
                                                             "whose first round falls in the period (a member once per campaign)."})
    study_participants = fields.Integer(metadata={"description": "From study: of study_members, those who took part."})
    study_participation_rate = fields.Float(allow_none=True, metadata={"description": "参学率: study_participants / study_members."})


class ScorecardSchema(Schema):
    """The scorecard rows the caller may read; ``notes`` say which figures of other
    services are left out and why."""

    class Meta:
        ordered = True

    by = fields.String(required=True)
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    rows = fields.List(fields.Nested(ScorecardRowSchema), required=True)
    notes = fields.List(fields.String(), required=True)
