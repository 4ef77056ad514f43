"""Study: contents, campaigns to grid groups, participation, sessions and reports."""
from datetime import timedelta

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from wangge import events
from wangge.http import http, idempotency_key, read_body, read_json_body
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.timers import configured_timer

from services.study import metrics, schemas, workflow
from services.study.campaigns import CampaignPolicy
from services.study.directory import GridDirectory
from services.study.storage import StudyStore


class Grids(DependencyProvider):
    """routing's grid registry, read over HTTP and cached."""

    def setup(self):
        settings = self.container.config["REGISTRY"]
        self.directory = GridDirectory(settings["ROUTING_URL"], float(settings["CACHE_SECONDS"]), float(settings["TIMEOUT_SECONDS"]))

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
    # mandatory: a dispatch nobody is bound to receive raises and is published again later
    dispatch = EventDispatcher(mandatory=True)
    config = Config()
    entrypoint_metrics = EntrypointMetrics()

    # -- contents ------------------------------------------------------------------

    @http("POST", "/api/v1/contents")
    def create_content(self, request):
        body = schemas.ContentSchema().load(read_json_body(request))
        return 201, view(workflow.create_content(self.store, body, events.utcnow()))

    @http("PUT", "/api/v1/contents/<string:content_id>")
    def revise_content(self, request, content_id):
        body = schemas.ContentSchema().load(read_json_body(request))
        return view(workflow.revise_content(self.store, content_id, body, events.utcnow()))

    @http("GET", "/api/v1/contents/<string:content_id>")
    def get_content(self, request, content_id):
        return view(workflow.content_with_history(self.store, content_id))

    @http("GET", "/api/v1/contents")
    def list_contents(self, request):
        query = schemas.ContentQuerySchema().load(request.args.to_dict())
        found, total = self.store.find_contents(query.get("tag"), (query["page"] - 1) * query["per_page"], query["per_page"])
        return {"items": [view(item) for item in found], "total": total}

    # -- campaigns -----------------------------------------------------------------

    @http("POST", "/api/v1/campaigns")
    def create_campaign(self, request):
        body = schemas.CampaignSchema().load(read_json_body(request))
        campaign, created = workflow.create_campaign(self.store, self.grids, self.policy, body, events.utcnow(), idempotency_key(request))
        return (201 if created else 200), campaign_view(campaign)

    @http("GET", "/api/v1/campaigns")
    def list_campaigns(self, request):
        return {"items": [campaign_view(c) for c in self.store.list_campaigns()]}

    @http("GET", "/api/v1/campaigns/<string:campaign_id>")
    def get_campaign(self, request, campaign_id):
        campaign = workflow.existing(self.store.get_campaign(campaign_id), f"No campaign {campaign_id}.")
        return {**campaign_view(campaign), "dispatches": self.store.dispatch_counts(campaign_id)}

    @http("GET", "/api/v1/campaigns/<string:campaign_id>/report")
    def campaign_report(self, request, campaign_id):
        query = schemas.ReportQuerySchema().load(request.args.to_dict())
        campaign = workflow.existing(self.store.get_campaign(campaign_id), f"No campaign {campaign_id}.")
        rows = workflow.report(self.store, campaign, query["by"])
        if query["format"] == "csv":
            return Response(workflow.report_csv(rows), content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{campaign_id}-{query["by"]}.csv"'})
        return {"campaign_id": campaign_id, "by": query["by"], "rows": rows}

    @http("GET", "/api/v1/campaigns/<string:campaign_id>/missing")
    def missing_members(self, request, campaign_id):
        query = schemas.MissingQuerySchema().load(request.args.to_dict())
        campaign = workflow.existing(self.store.get_campaign(campaign_id), f"No campaign {campaign_id}.")
        missing = workflow.missing(self.store, campaign, query["grid_id"])
        return {"campaign_id": campaign_id, "grid_id": query["grid_id"],
                "members": [{"member_id": m["_id"], "name": m["name"], "kind": m["kind"]} for m in missing]}

    # -- members, check-ins and sessions -------------------------------------------

    @http("POST", "/api/v1/members/import")
    def import_members(self, request):
        if (request.content_type or "").startswith("text/csv"):
            document = workflow.members_from_csv(read_body(request, max_bytes=8 * 1024 * 1024))
        else:
            document = read_json_body(request, max_bytes=8 * 1024 * 1024)
        imported = workflow.import_members(self.store, self.grids, workflow.parse_members(document), events.utcnow())
        return {"imported": imported}

    @http("POST", "/api/v1/checkins")
    def check_in(self, request):
        body = schemas.CheckinSchema().load(read_json_body(request))
        created = workflow.check_in(self.store, body, events.utcnow())
        if created:
            metrics.CHECKINS.labels(body["kind"]).inc()
        return (201 if created else 200), {"campaign_id": body["campaign_id"], "member_id": body["member_id"], "kind": body["kind"], "new": created}

    @http("POST", "/api/v1/sessions")
    def record_session(self, request):
        body = schemas.SessionSchema().load(read_json_body(request))
        session, created = workflow.record_session(self.store, self.grids, body, events.utcnow(), idempotency_key(request))
        return (201 if created else 200), session_view(session)

    @http("POST", "/api/v1/sessions/<string:session_id>/attendance")
    def add_attendance(self, request, session_id):
        if (request.content_type or "").startswith("text/csv"):
            rows = workflow.members_from_csv(read_body(request))["members"]
            document = {"attendees": [row.get("member_id") for row in rows]}
        else:
            document = read_json_body(request)
        body = schemas.AttendanceSchema().load(document)
        return session_view(workflow.add_attendance(self.store, session_id, body["attendees"], events.utcnow()))

    @http("GET", "/api/v1/teams/report")
    def team_report(self, request):
        return {"teams": self.store.team_report()}

    # -- timers ---------------------------------------------------------------------

    @configured_timer("SCHEDULER", "INTERVAL_SECONDS", default=5)
    def run_schedule(self):
        now = events.utcnow()
        settings = self.config["SCHEDULER"]
        workflow.fan_out_due_rounds(self.store, self.policy, now)
        outcomes = workflow.publish_due(self.store, self.dispatch, now, now + timedelta(seconds=float(settings["CLAIM_SECONDS"])), int(settings["BATCH"]))
        for (kind, outcome), count in outcomes.items():
            metrics.DISPATCHES.labels(kind, outcome).inc(count)

    @configured_timer("REPORTS", "INTERVAL_SECONDS", default=60)
    def refresh_gauges(self):
        for campaign in self.store.list_campaigns(limit=20):
            for row in workflow.report(self.store, campaign, "town"):
                if row["rate"] is not None:
                    metrics.PARTICIPATION.labels(campaign["_id"], row["town_id"]).set(row["rate"])



def view(content):
    return {"content_id": content["_id"], **{k: v for k, v in content.items() if k != "_id"}}


def session_view(session):
    return {k: v for k, v in session.items() if k != "idempotency_key"}


def campaign_view(campaign):
    return {
        "campaign_id": campaign["_id"],
        **{k: campaign.get(k) for k in ("title", "content_ids", "target", "schedule", "reminder", "next_round_at", "last_round_at", "created_at")},
        "grids": len(campaign["grids"]),
    }
