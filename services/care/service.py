"""Care (做在网格): priority residents and their home visits, overdue visits, volunteer
activities, and the public to-do list (为民办事清单)."""
import logging
from datetime import timedelta

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider

from wangge import events
from wangge.auth import ServiceCredentials
from wangge.http import http, idempotency_key, read_json_body
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.permissions import CARE_READ, CARE_RECORD, CARE_REPORTS, PUBLIC, TODO_EDIT, VOLUNTEERS_RECORD
from wangge.timers import configured_timer

from services.care import metrics, schemas, views, workflow
from services.care.directory import GridDirectory
from services.care.needs import RequestFiling
from services.care.schedule import VisitPolicy
from services.care.storage import CareStore

log = logging.getLogger(__name__)


def sender_key(request):
    """The request's ``Idempotency-Key`` as compared with the same sender's keys only."""
    key = idempotency_key(request)
    return key and f"subject:{request.caller.subject}:{key}"


class Peers(DependencyProvider):
    """routing's grid records and intake's filing, both with care's own client token."""

    def setup(self):
        config = self.container.config
        credentials = ServiceCredentials.from_config(config["AUTH"])
        registry = config["REGISTRY"]
        self.directory = GridDirectory(registry["ROUTING_URL"], float(registry["CACHE_SECONDS"]), float(registry["TIMEOUT_SECONDS"]),
                                       credentials.authorization)
        self.filing = RequestFiling(config["INTAKE"]["URL"], float(config["INTAKE"]["TIMEOUT_SECONDS"]), credentials.authorization)

    def get_dependency(self, worker_ctx):
        return self


class Policy(DependencyProvider):
    """Visit intervals, the grid head's grace and the county's clock, resolved once from ``VISITS``."""

    def setup(self):
        self.policy = VisitPolicy.from_config(self.container.config["VISITS"])

    def get_dependency(self, worker_ctx):
        return self.policy


class CareService(HealthAndMetrics):
    name = "care"

    store = Storage(CareStore)
    peers = Peers()
    policy = Policy()
    # mandatory: a notice nobody is bound to receive raises and is published again later
    dispatch = EventDispatcher(mandatory=True)
    config = Config()
    entrypoint_metrics = EntrypointMetrics()

    # -- priority residents and visits ----------------------------------------------

    @http("POST", "/api/v1/care/residents", allow=CARE_RECORD, summary="Register a priority resident (重点关爱对象)",
          body=schemas.ResidentSchema, responses={201: schemas.ResidentCreatedSchema}, errors=(404, 503))
    def register_resident(self, request):
        body = schemas.ResidentSchema().load(read_json_body(request))
        resident = workflow.register_resident(self.store, self.peers.directory, self.policy, request.caller, body, events.utcnow())
        return 201, schemas.ResidentCreatedSchema().dump({**resident, "resident_id": resident["_id"]})

    @http("GET", "/api/v1/care/residents", allow=CARE_READ, summary="Priority residents of a grid, by id, paged",
          query=schemas.ResidentQuerySchema, responses={200: schemas.ResidentPageSchema}, errors=(503,))
    def list_residents(self, request):
        return self._resident_page(request, overdue=False)

    @http("GET", "/api/v1/care/overdue", allow=CARE_READ, summary="Priority residents past their visit's due time, longest overdue first",
          query=schemas.ResidentQuerySchema, responses={200: schemas.ResidentPageSchema}, errors=(503,))
    def list_overdue(self, request):
        return self._resident_page(request, overdue=True)

    @http("GET", "/api/v1/care/residents/<string:resident_id>", allow=CARE_READ, summary="A priority resident with their latest visits",
          responses={200: schemas.ResidentDetailSchema}, errors=(404, 503))
    def get_resident(self, request, resident_id):
        now = events.utcnow()
        resident, visits, reason = workflow.read_resident(self.store, self.peers.directory, request.caller, resident_id)
        self._audit(request, reason, resident["grid_id"], [resident_id])
        return schemas.ResidentDetailSchema().dump({**workflow.resident_view(resident, now, reason),
                                                    "visits": [views.visit_view(visit, reason is not None) for visit in visits]})

    @http("PATCH", "/api/v1/care/residents/<string:resident_id>", allow=CARE_RECORD, summary="Change a priority resident's details, grid or worker",
          body=schemas.ResidentChangeSchema, responses={200: schemas.ResidentViewSchema}, errors=(404, 409, 503))
    def change_resident(self, request, resident_id):
        changes = schemas.ResidentChangeSchema().load(read_json_body(request))
        now = events.utcnow()
        resident = workflow.change_resident(self.store, self.peers.directory, self.policy, request.caller, resident_id, changes, now)
        self._audit(request, "recorder", resident["grid_id"], [resident_id])  # the answer shows them in full
        return schemas.ResidentViewSchema().dump(workflow.resident_view(resident, now, "recorder"))

    @http("POST", "/api/v1/care/residents/<string:resident_id>/end", allow=CARE_RECORD,
          summary="End a priority resident's care (moved away, deceased, declined, no longer eligible): their personal data is erased",
          body=schemas.CareEndingSchema, responses={200: schemas.CareEndedSchema}, errors=(404, 503))
    def end_care(self, request, resident_id):
        body = schemas.CareEndingSchema().load(read_json_body(request))
        ending, erased = workflow.end_care(self.store, self.peers.directory, request.caller, resident_id, body["reason"], events.utcnow())
        log.info("care ended", extra={"resident_id": resident_id, "grid_id": ending["grid_id"], "reason": ending["reason"],
                                      "subject": request.caller.subject})
        return schemas.CareEndedSchema().dump({**ending, "visits_erased": erased})

    @http("POST", "/api/v1/care/visits", allow=CARE_RECORD, summary="Record a home visit (入户走访); each need found becomes a request",
          body=schemas.VisitSchema, headers=("Idempotency-Key",), responses={201: schemas.VisitRecordedSchema, 200: schemas.VisitRecordedSchema},
          errors=(404, 503))
    def record_visit(self, request):
        """Meets the resident's due time and starts the next interval. Each of ``needs`` is
        filed with intake as a request (channel ``visit``, the visit's id as ``external_ref``),
        and the visit keeps its tracking number. If intake does not answer, the visit is kept
        (503 names ``visit_id``): send it again with the same ``Idempotency-Key`` to file the rest."""
        body = schemas.VisitSchema().load(read_json_body(request))
        visit, created = workflow.record_visit(self.store, self.peers.directory, self.policy, self.peers.filing, request.caller, body,
                                               events.utcnow(), sender_key(request))
        if created:
            metrics.VISITS.inc()
        resident = self.store.get_resident(visit["resident_id"])
        return (201 if created else 200), schemas.VisitRecordedSchema().dump({**visit, "next_visit_due": resident.get("next_visit_due")})

    @http("GET", "/api/v1/care/indicators", allow=CARE_REPORTS, summary="Visits due and made on time, per grid, community or town",
          query=schemas.PeriodQuerySchema, responses={200: schemas.IndicatorsSchema})
    def indicators(self, request):
        """Every due time that fell within the period (county days ``from`` to ``to``, and
        before now) counts in ``visits_due``; those met by a visit at or before it, in ``visits_on_time``."""
        query = schemas.PeriodQuerySchema().load(request.args.to_dict())
        start, end = self.policy.period(query["from_"], query["to"])
        rows = self.store.visit_indicators(query["by"], start, min(end, events.utcnow()))
        return schemas.IndicatorsSchema().dump({"rows": rows})

    # -- volunteers -----------------------------------------------------------------

    @http("POST", "/api/v1/volunteer/activities", allow=VOLUNTEERS_RECORD, summary="Record a volunteer activity of a grid or a community",
          body=schemas.ActivitySchema, headers=("Idempotency-Key",),
          responses={201: schemas.ActivityRecordedSchema, 200: schemas.ActivityRecordedSchema}, errors=(404, 503))
    def record_activity(self, request):
        body = schemas.ActivitySchema().load(read_json_body(request))
        activity, created = workflow.record_activity(self.store, self.peers.directory, request.caller, body, events.utcnow(), sender_key(request))
        return (201 if created else 200), schemas.ActivityRecordedSchema().dump(activity)

    @http("GET", "/api/v1/volunteer/report", allow=CARE_REPORTS, summary="Volunteer activities, participants and hours per grid, community or town",
          query=schemas.PeriodQuerySchema, responses={200: schemas.VolunteerReportSchema})
    def volunteer_report(self, request):
        query = schemas.PeriodQuerySchema().load(request.args.to_dict())
        start, end = self.policy.period(query["from_"], query["to"])
        return schemas.VolunteerReportSchema().dump({"rows": self.store.volunteer_report(query["by"], start, end)})

    # -- the public to-do list ------------------------------------------------------

    @http("POST", "/api/v1/todo", allow=TODO_EDIT, summary="Add an item to the public to-do list (为民办事清单)",
          body=schemas.TodoSchema, responses={201: schemas.PublicTodoSchema}, errors=(404, 503))
    def create_todo(self, request):
        body = schemas.TodoSchema().load(read_json_body(request))
        return 201, schemas.PublicTodoSchema().dump(views.public_todo(workflow.create_todo(self.store, self.peers.directory, request.caller,
                                                                                          body, events.utcnow())))

    @http("PATCH", "/api/v1/todo/<string:item_id>", allow=TODO_EDIT, summary="Update an item of the to-do list (its progress, most often)",
          body=schemas.TodoChangeSchema, responses={200: schemas.PublicTodoSchema}, errors=(404, 409, 503))
    def update_todo(self, request, item_id):
        changes = schemas.TodoChangeSchema().load(read_json_body(request))
        item = workflow.update_todo(self.store, self.peers.directory, request.caller, item_id, changes, events.utcnow())
        return schemas.PublicTodoSchema().dump(views.public_todo(item))

    @http("GET", "/api/v1/public/todo", allow=PUBLIC, summary="The public to-do list, no sign-in: what is being done, by whom, by when",
          query=schemas.PublicTodoQuerySchema, responses={200: schemas.PublicTodoListSchema})
    def public_todo(self, request):
        query = schemas.PublicTodoQuerySchema().load(request.args.to_dict())
        return schemas.PublicTodoListSchema().dump({"items": [views.public_todo(item) for item in self.store.todo_of_town(query.get("town_id"))]})

    # -- timers -----------------------------------------------------------------------

    @configured_timer("OVERDUE", "INTERVAL_SECONDS", default=30)
    def publish_overdue(self):
        now = events.utcnow()
        settings = self.config["OVERDUE"]
        outcomes = workflow.publish_overdue(self.store, self.peers.directory, self.dispatch, now,
                                            now + timedelta(seconds=float(settings["CLAIM_SECONDS"])), int(settings["BATCH"]))
        for (stage, outcome), count in outcomes.items():
            metrics.OVERDUE_NOTICES.labels(stage, outcome).inc(count)
        metrics.OVERDUE_RESIDENTS.set(self.store.count_overdue(now))

    # -- shared steps -------------------------------------------------------------------

    def _resident_page(self, request, overdue):
        now = events.utcnow()
        query = schemas.ResidentQuerySchema().load(request.args.to_dict())
        found, total, reason = workflow.list_residents(self.store, self.peers.directory, request.caller, query, now, overdue)
        self._audit(request, reason, query.get("grid_id"), [resident["_id"] for resident in found])
        return schemas.ResidentPageSchema().dump({"items": [workflow.resident_view(r, now, reason) for r in found], "total": total})

    def _audit(self, request, reason, grid_id, resident_ids):
        if reason and resident_ids:
            # who read priority residents' names and phones, where, why (never the data)
            log.info("care resident data read", extra={"audit": "care_resident_data", "subject": request.caller.subject, "role": reason,
                                                       "grid_id": grid_id, "resident_ids": resident_ids, "endpoint": request.path})
