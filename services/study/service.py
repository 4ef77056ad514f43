"""Study: contents, campaigns to grid groups, participation, sessions and reports."""
import uuid
from datetime import timedelta

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from wangge import events
from wangge.auth import ServiceCredentials
from wangge.http import http, idempotency_key, read_body, read_json_body
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.publishing import EventBatches
from wangge.timers import configured_timer
from wangge.permissions import MEMBERS_IMPORT, PARTICIPATION_READ, PARTICIPATION_RECORD, STUDY_EDIT, STUDY_READ

from services.study import access, metrics, schemas, workflow
from services.study.campaigns import CampaignPolicy
from services.study.directory import GridDirectory
from services.study.storage import StudyStore


def sender_key(request):
    """The request's ``Idempotency-Key`` as compared with the same sender's keys only."""
    key = idempotency_key(request)
    return key and f"subject:{request.caller.subject}:{key}"


class Grids(DependencyProvider):
    """routing's grid registry, read over HTTP and cached."""

    def setup(self):
        settings = self.container.config["REGISTRY"]
        credentials = ServiceCredentials.from_config(self.container.config["AUTH"])
        self.directory = GridDirectory(settings["ROUTING_URL"], float(settings["CACHE_SECONDS"]), float(settings["TIMEOUT_SECONDS"]),
                                       credentials.authorization)

    def get_dependency(self, worker_ctx):
        return self.directory


class Policy(DependencyProvider):
    """The county's clock and the campaign minimums, resolved once from ``CAMPAIGNS``."""

    def setup(self):
        self.policy = CampaignPolicy.from_config(self.container.config["CAMPAIGNS"])

    def get_dependency(self, worker_ctx):
        return self.policy


class StudyService(HealthAndMetrics):
    name = "study"

    store = Storage(StudyStore)
    grids = Grids()
    policy = Policy()
    # each round's dispatches at once; one nobody is bound to receive is published again later
    publish_events = EventBatches()
    config = Config()
    entrypoint_metrics = EntrypointMetrics()

    # -- contents ------------------------------------------------------------------

    @http("POST", "/api/v1/contents", allow=STUDY_EDIT, summary="Create a study item", body=schemas.ContentSchema, responses={201: schemas.ContentViewSchema})
    def create_content(self, request):
        body = schemas.ContentSchema().load(read_json_body(request))
        return 201, schemas.ContentViewSchema().dump(workflow.create_content(self.store, body, events.utcnow()))

    @http("PUT", "/api/v1/contents/<string:content_id>", allow=STUDY_EDIT, summary="Edit a study item (a new version)", body=schemas.ContentSchema,
          responses={200: schemas.ContentViewSchema}, errors=(404, 409))
    def revise_content(self, request, content_id):
        body = schemas.ContentSchema().load(read_json_body(request))
        return schemas.ContentViewSchema().dump(workflow.revise_content(self.store, content_id, body, events.utcnow()))

    @http("GET", "/api/v1/contents/<string:content_id>", allow=STUDY_READ, summary="A study item with its earlier versions",
          responses={200: schemas.ContentViewSchema}, errors=(404,))
    def get_content(self, request, content_id):
        return schemas.ContentViewSchema().dump(workflow.content_with_history(self.store, content_id))

    @http("GET", "/api/v1/contents", allow=STUDY_READ, summary="Study items, latest edits first, paged", query=schemas.ContentQuerySchema,
          responses={200: schemas.ContentPageSchema})
    def list_contents(self, request):
        query = schemas.ContentQuerySchema().load(request.args.to_dict())
        found, total = self.store.find_contents(query.get("tag"), (query["page"] - 1) * query["per_page"], query["per_page"])
        return schemas.ContentPageSchema().dump({"items": found, "total": total})

    # -- campaigns -----------------------------------------------------------------

    @http("POST", "/api/v1/campaigns", allow=STUDY_EDIT, summary="Create a campaign", body=schemas.CampaignSchema, headers=("Idempotency-Key",),
          responses={201: schemas.CampaignViewSchema, 200: schemas.CampaignViewSchema}, errors=(404, 503))
    def create_campaign(self, request):
        body = schemas.CampaignSchema().load(read_json_body(request))
        campaign, created = workflow.create_campaign(self.store, self.grids, self.policy, body, events.utcnow(), sender_key(request))
        return (201 if created else 200), schemas.CampaignViewSchema().dump(with_grid_count(campaign))

    @http("GET", "/api/v1/campaigns", allow=STUDY_READ, summary="The latest campaigns", responses={200: schemas.CampaignListSchema})
    def list_campaigns(self, request):
        return schemas.CampaignListSchema().dump({"items": [with_grid_count(c) for c in self.store.list_campaigns()]})

    @http("GET", "/api/v1/campaigns/<string:campaign_id>", allow=STUDY_READ, summary="A campaign and its dispatches by kind and state",
          responses={200: schemas.CampaignDetailSchema}, errors=(404,))
    def get_campaign(self, request, campaign_id):
        campaign = workflow.existing(self.store.get_campaign(campaign_id), f"No campaign {campaign_id}.")
        return schemas.CampaignDetailSchema().dump({**with_grid_count(campaign), "dispatches": self.store.dispatch_counts(campaign_id)})

    @http("GET", "/api/v1/campaigns/<string:campaign_id>/report", allow=STUDY_READ, summary="Participation rates (参学率), as JSON or CSV",
          query=schemas.ReportQuerySchema, responses={200: {"application/json": schemas.CampaignReportSchema, "text/csv": None}},
          errors=(404,))
    def campaign_report(self, request, campaign_id):
        query = schemas.ReportQuerySchema().load(request.args.to_dict())
        campaign = workflow.existing(self.store.get_campaign(campaign_id), f"No campaign {campaign_id}.")
        rows = workflow.report(self.store, campaign, query["by"])
        if query["format"] == "csv":
            return Response(workflow.report_csv(rows), content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{campaign_id}-{query["by"]}.csv"'})
        return schemas.CampaignReportSchema().dump({"campaign_id": campaign_id, "by": query["by"], "rows": rows})

    @http("GET", "/api/v1/campaigns/<string:campaign_id>/missing", allow=PARTICIPATION_READ,
          summary="The 不掉队 list: a grid's members who have not taken part", query=schemas.CampaignGridQuerySchema,
          responses={200: schemas.MissingMembersSchema}, errors=(404, 503))
    def missing_members(self, request, campaign_id):
        query = schemas.CampaignGridQuerySchema().load(request.args.to_dict())
        campaign = workflow.existing(self.store.get_campaign(campaign_id), f"No campaign {campaign_id}.")
        access.require_grids(request.caller, self.grids, [query["grid_id"]])
        missing = workflow.missing(self.store, campaign, query["grid_id"])
        return schemas.MissingMembersSchema().dump({"campaign_id": campaign_id, "grid_id": query["grid_id"], "members": missing})

    @http("GET", "/api/v1/campaigns/<string:campaign_id>/participants", allow=PARTICIPATION_READ,
          summary="A grid's members who have taken part, with how and when first", query=schemas.CampaignGridQuerySchema,
          responses={200: schemas.ParticipantsSchema}, errors=(404, 503))
    def participants(self, request, campaign_id):
        query = schemas.CampaignGridQuerySchema().load(request.args.to_dict())
        campaign = workflow.existing(self.store.get_campaign(campaign_id), f"No campaign {campaign_id}.")
        access.require_grids(request.caller, self.grids, [query["grid_id"]])
        found = workflow.participants(self.store, campaign, query["grid_id"])
        return schemas.ParticipantsSchema().dump({"campaign_id": campaign_id, "grid_id": query["grid_id"], "members": found})

    # -- members, check-ins and sessions -------------------------------------------

    @http("POST", "/api/v1/members/import", allow=MEMBERS_IMPORT, summary="Import members of grids: all rows or none",
          query=schemas.MemberImportQuerySchema, body={"application/json": schemas.MemberImportSchema, "text/csv": None},
          responses={200: schemas.MembersImportedSchema}, errors=(409, 503))
    def import_members(self, request):
        """Importing the same members again changes nothing. Members stored before with
        other details (name, grid, kind, phone) are overwritten only with ``replace=true``;
        without it the import is refused (409) with how many would change and which
        fields (``changes``, ``conflicts``), and nothing is written."""
        query = schemas.MemberImportQuerySchema().load(request.args.to_dict())
        if (request.content_type or "").startswith("text/csv"):
            document = workflow.members_from_csv(read_body(request, max_bytes=8 * 1024 * 1024))
        else:
            document = read_json_body(request, max_bytes=8 * 1024 * 1024)
        counts = workflow.import_members(self.store, self.grids, workflow.parse_members(document), events.utcnow(), query["replace"])
        return schemas.MembersImportedSchema().dump(counts)

    @http("POST", "/api/v1/checkins", allow=PARTICIPATION_RECORD, summary="A member read, attended or commented on a campaign", body=schemas.CheckinSchema,
          responses={201: schemas.CheckinRecordedSchema, 200: schemas.CheckinRecordedSchema}, errors=(404, 409, 503))
    def check_in(self, request):
        """Grid workers and heads check in members of their own grids (403 naming the grid otherwise)."""
        body = schemas.CheckinSchema().load(read_json_body(request))
        created = workflow.check_in(self.store, self.grids, request.caller, body, events.utcnow())
        if created:
            metrics.CHECKINS.labels(body["kind"]).inc()
        return (201 if created else 200), schemas.CheckinRecordedSchema().dump({**body, "new": created})

    @http("POST", "/api/v1/sessions", allow=PARTICIPATION_RECORD, summary="Record a meeting (板凳会, 院落会, online, door to door)", body=schemas.SessionSchema,
          headers=("Idempotency-Key",), responses={201: schemas.SessionViewSchema, 200: schemas.SessionViewSchema}, errors=(404, 503))
    def record_session(self, request):
        """Grid workers and heads record sessions of their own grids, attended by their members."""
        body = schemas.SessionSchema().load(read_json_body(request))
        session, created = workflow.record_session(self.store, self.grids, request.caller, body, events.utcnow(), sender_key(request))
        return (201 if created else 200), schemas.SessionViewSchema().dump(session)

    @http("POST", "/api/v1/sessions/<string:session_id>/attendance", allow=PARTICIPATION_RECORD, summary="Add attendance to a meeting",
          body={"application/json": schemas.AttendanceSchema, "text/csv": None}, responses={200: schemas.SessionViewSchema},
          errors=(404, 503))
    def add_attendance(self, request, session_id):
        if (request.content_type or "").startswith("text/csv"):
            rows = workflow.members_from_csv(read_body(request))["members"]
            document = {"attendees": [row.get("member_id") for row in rows]}
        else:
            document = read_json_body(request)
        body = schemas.AttendanceSchema().load(document)
        attended = workflow.add_attendance(self.store, self.grids, request.caller, session_id, body["attendees"], events.utcnow())
        return schemas.SessionViewSchema().dump(attended)

    @http("GET", "/api/v1/teams/report", allow=STUDY_READ, summary="Per lecture team: sessions held and attendance", responses={200: schemas.TeamReportSchema})
    def team_report(self, request):
        return schemas.TeamReportSchema().dump({"teams": self.store.team_report()})

    # -- timers ---------------------------------------------------------------------

    @configured_timer("SCHEDULER", "INTERVAL_SECONDS", default=5)
    def run_schedule(self):
        now = events.utcnow()
        settings = self.config["SCHEDULER"]
        claim, claim_until = uuid.uuid4().hex, now + timedelta(seconds=float(settings["CLAIM_SECONDS"]))
        _, outcomes = workflow.fan_out_due_rounds(self.store, self.policy, self.publish_events, now, claim, claim_until)
        metrics.count_dispatches(outcomes)
        batch = int(settings["BATCH"])
        while True:  # batch after batch while they come full
            outcomes = workflow.publish_due(self.store, self.publish_events, now, claim, claim_until, batch)
            metrics.count_dispatches(outcomes)
            if sum(outcomes.values()) < batch or any(outcome == "not_taken" for _, outcome in outcomes):
                break

    @configured_timer("REPORTS", "INTERVAL_SECONDS", default=60)
    def refresh_gauges(self):
        campaigns = self.store.list_campaigns(limit=20)
        members = self.store.members_per_grid() if campaigns else {}  # the same roster for every campaign
        for campaign in campaigns:
            for row in workflow.report(self.store, campaign, "town", members):
                if row["rate"] is not None:
                    metrics.PARTICIPATION.labels(campaign["_id"], row["town_id"]).set(row["rate"])


def with_grid_count(campaign):
    """The campaign with ``grids`` counted: the grids themselves are many, and kept for its dispatches."""
    return {**campaign, "grids": len(campaign["grids"])}
