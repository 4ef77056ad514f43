"""Routing: the grid registry, and every case from its request to its closure."""
import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from eventlet import tpool
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.messaging import Publisher
from werkzeug.wrappers import Response

from wangge import events, topology
from wangge.auth import Forbidden
from wangge.http import NotFound, http, read_json_body
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.reliable import event_handler
from wangge.timers import configured_timer
from wangge.permissions import (
    CASES_ACT, CASES_DISPATCH, CASES_FOLLOW_UP, CASES_READ, CLASSIFIER_EXAMPLES, INDICATORS_READ, REGISTRY_LOAD, REGISTRY_READ,
    STAFF_ROLES,
)

from services.routing import access, dispatch, grid_map, indicators, metrics, schemas, views, workflow
from services.routing.dependencies import Registry, RequestClassifier
from services.routing.partners import Partners
from services.routing.lifecycle import OPEN_STATUSES, Actor
from services.routing.registry import prepare_registry
from services.routing.registry_schema import RegistrySchema
from services.routing.storage import RoutingStore

log = logging.getLogger(__name__)

# A county's registry is about a megabyte (the demo county of 1,429 grids: 0.9 MB).
MAX_REGISTRY_BYTES = 16 * 1024 * 1024

# every change of a case answers the case as changed; it may be unknown, or refused in its state
CASE_CHANGE = {"responses": {200: schemas.CaseDetailSchema}, "errors": (404, 409)}


class RoutingService(HealthAndMetrics):
    name = "routing"

    store = Storage(RoutingStore)
    registry = Registry()
    classifier = RequestClassifier()
    # mandatory: an event nobody is bound to receive raises and stays in the outbox
    dispatch = EventDispatcher(mandatory=True)
    # results for the systems that sent requests: a system with no queue bound has not signed up for them
    publish_result = Publisher(exchange=topology.outbound_exchange())
    config = Config()
    entrypoint_metrics = EntrypointMetrics()
    partners = Partners()

    # -- requests become cases -------------------------------------------------

    @event_handler("intake", events.REQUEST_RECEIVED)
    def open_case(self, message):
        request = events.read_event(events.REQUEST_RECEIVED, message)["data"]
        now = events.utcnow()
        snapshot = self._snapshot(now)
        if snapshot.names_unknown_place(request):
            # a registry loaded through another process within the check interval: read it now, not after triage
            self.registry.invalidate()
            snapshot = self._snapshot(now)
        case_id, entries = workflow.open_case(self.store, snapshot, self.classifier, self.config, request, now)
        self._publish(case_id, entries)
        log.info("request routed", extra={"tracking_no": request["tracking_no"], "case_id": case_id})

    # -- the grid registry ------------------------------------------------------

    @http("PUT", "/api/v1/registry", allow=REGISTRY_LOAD, summary="Load a registry edition (its version must be newer)", body=RegistrySchema,
          responses={200: schemas.RegistryLoadedSchema}, errors=(409,))
    def load_registry(self, request):
        document = read_json_body(request, max_bytes=MAX_REGISTRY_BYTES)
        # checking and flattening a county's registry is seconds of CPU: off the event loop
        registry, (towns, communities, grids, departments) = tpool.execute(prepare_registry, document)
        counts = self.store.replace_registry(
            registry["version"], registry["county"],
            {"towns": towns, "communities": communities, "grids": grids, "departments": departments},
            events.utcnow(),
        )
        self.registry.invalidate()
        log.info("registry loaded", extra={"version": registry["version"], **counts})
        return schemas.RegistryLoadedSchema().dump({"version": registry["version"], "counts": counts})

    @http("GET", "/api/v1/registry", allow=REGISTRY_READ, summary="The registry edition in force", responses={200: schemas.RegistrySummarySchema}, errors=(404,))
    def registry_summary(self, request):
        summary = self.store.registry_summary()
        if summary is None:
            raise NotFound("No registry loaded yet.")
        return schemas.RegistrySummarySchema().dump({"version": summary["edition"], **summary})

    @http("GET", "/api/v1/grids", allow=REGISTRY_READ, summary="Grids, paged", query=schemas.GridQuerySchema, responses={200: schemas.GridPageSchema})
    def list_grids(self, request):
        query = schemas.GridQuerySchema().load(request.args.to_dict())
        edition = self.store.registry_edition()
        filters = {key: query[key] for key in ("town_id", "community_id") if key in query}
        skip = (query["page"] - 1) * query["per_page"]
        grids = self.store.registry_records("grids", edition, filters, skip, query["per_page"], {"area": 0})
        # the edition each page comes from: a reader paging through sees a switch and starts again
        return schemas.GridPageSchema().dump({
            "version": edition, "items": grids, "page": query["page"], "per_page": query["per_page"],
            "total": self.store.count_registry_records("grids", edition, filters),
        })

    @http("GET", "/api/v1/grids/locate", allow=REGISTRY_READ, summary="The grid containing a point", query=schemas.PointQuerySchema,
          responses={200: schemas.GridSummarySchema}, errors=(404,))
    def locate_point(self, request):
        point = schemas.PointQuerySchema().load(request.args.to_dict())
        snapshot = self._snapshot(events.utcnow())
        grid_id = snapshot.index.grid_for_point(point["lon"], point["lat"])
        if grid_id is None:
            raise NotFound(f"No grid contains ({point['lon']}, {point['lat']}).")
        return schemas.GridSummarySchema().dump(snapshot.grid(grid_id))

    @http("GET", "/api/v1/grids/<string:grid_id>", allow=REGISTRY_READ, summary="One grid with its head, workers, WeChat groups, buildings and area",
          responses={200: schemas.GridDetailSchema}, errors=(404,))
    def get_grid(self, request, grid_id):
        grid = self.store.registry_record("grids", self.store.registry_edition(), grid_id)
        if grid is None:
            raise NotFound(f"No grid {grid_id}.")
        return schemas.GridDetailSchema().dump(views.grid_detail(grid, staff=request.caller.has_any(STAFF_ROLES)))

    @http("GET", "/api/v1/me/grids", allow=REGISTRY_READ, summary="The grids the signed-in staff member heads or works in",
          responses={200: schemas.MyGridsSchema})
    def my_grids(self, request):
        snapshot = self._snapshot(events.utcnow())
        mine = access.grids_of_caller(request.caller, snapshot)
        return schemas.MyGridsSchema().dump({
            "subject": request.caller.subject, "version": snapshot.edition,
            "items": [views.my_grid(grid, role, request.caller.subject) for grid, role in sorted(mine, key=lambda item: item[0]["id"])],
        })

    @http("GET", "/api/v1/departments", allow=REGISTRY_READ, summary="The registry's departments, to dispatch or escalate a case to",
          responses={200: schemas.DepartmentListSchema})
    def departments(self, request):
        snapshot = self._snapshot(events.utcnow())
        return schemas.DepartmentListSchema().dump({
            "version": snapshot.edition, "items": sorted(snapshot.departments.values(), key=lambda department: department["id"]),
        })

    @http("GET", "/api/v1/map/grids", allow=CASES_READ,
          summary="The grids of the caller's area as GeoJSON, each with its open and overdue cases, and those of each town in no grid yet (the county map)",
          responses={200: schemas.GridMapSchema})
    def map_of_grids(self, request):
        """One answer for the whole map: the command centre gets every grid, a town lead their town's,
        a community lead their community's, workers and heads their grids', a department the grids of
        its cases. Counts are of the open cases the caller may read, as ``GET /api/v1/cases`` lists them;
        those in a town but no grid yet are counted for their town."""
        now = events.utcnow()
        snapshot = self._snapshot(now)
        area = access.area_of(request.caller, snapshot)
        open_filter, overdue_filter = grid_map.open_case_filter(area), grid_map.overdue_case_filter(area, now)
        open_counts, overdue_counts = self.store.count_cases_by_grid(open_filter), self.store.count_cases_by_grid(overdue_filter)
        unplaced_open = self.store.count_cases_by_town(grid_map.unplaced(open_filter))
        unplaced_overdue = self.store.count_cases_by_town(grid_map.unplaced(overdue_filter))
        grids = grid_map.grids_on_map(area, snapshot.index.grids.values(), open_counts)
        return schemas.GridMapSchema().dump(grid_map.feature_collection(
            snapshot.edition, grids, open_counts, overdue_counts, unplaced_open, unplaced_overdue))

    # -- cases for workers, heads and departments ---------------------------------

    @http("GET", "/api/v1/cases", allow=CASES_READ, summary="Cases of the caller's area, newest first, paged", query=schemas.CaseQuerySchema,
          responses={200: schemas.CasePageSchema})
    def list_cases(self, request):
        query = schemas.CaseQuerySchema().load(request.args.to_dict())
        now = events.utcnow()
        area = access.area_of(request.caller, self._snapshot(now))
        filters = workflow.case_query(query, now, area.case_filter())
        found, total = self.store.find_cases(filters, (query["page"] - 1) * query["per_page"], query["per_page"])
        return schemas.CasePageSchema().dump({
            "items": [views.case_listed(case) for case in found], "page": query["page"], "per_page": query["per_page"], "total": total,
        })

    @http("GET", "/api/v1/workers/<string:worker_id>/cases", allow=CASES_READ, summary="A worker's open cases (the worker, their grid head and leads)",
          responses={200: schemas.WorkerCasesSchema})
    def my_open_cases(self, request, worker_id):
        snapshot = self._snapshot(events.utcnow())
        access.require_worker_access(request.caller, snapshot, worker_id)
        area = access.area_of(request.caller, snapshot)
        found, total = self.store.find_cases(workflow.open_cases_of(worker_id, area.case_filter()), 0, 500)
        return schemas.WorkerCasesSchema().dump({"items": [views.case_listed(case) for case in found], "total": total})

    @http("GET", "/api/v1/cases/<string:case_id>", allow=CASES_READ, summary="A case with its timeline, five steps, SLA clocks and follow-up",
          responses={200: schemas.CaseDetailSchema}, errors=(404,))
    def get_case(self, request, case_id):
        case, _ = self._case_for(request, case_id)
        return self._case_view(request, case)

    @http("POST", "/api/v1/cases/<string:case_id>/acknowledge", allow=CASES_ACT, summary="Acknowledge a case (the first response)", body=schemas.CaseChangeSchema, **CASE_CHANGE)
    def acknowledge(self, request, case_id):
        body = self._body(request, schemas.CaseChangeSchema)
        case, actor = self._case_for(request, case_id)
        return self._changed(request, workflow.move_case(self.store, self.config, case, "acknowledged", actor, body["note"], events.utcnow()))

    @http("POST", "/api/v1/cases/<string:case_id>/transitions", allow=CASES_ACT, summary="Move a case to another status", body=schemas.TransitionSchema, **CASE_CHANGE)
    def move(self, request, case_id):
        body = self._body(request, schemas.TransitionSchema)
        case, actor = self._case_for(request, case_id)
        return self._changed(request, workflow.move_case(self.store, self.config, case, body["status"], actor, body["note"], events.utcnow()))

    @http("POST", "/api/v1/cases/<string:case_id>/resolve", allow=CASES_ACT, summary="Resolve a case (the resident is asked to follow up)", body=schemas.CaseChangeSchema, **CASE_CHANGE)
    def resolve(self, request, case_id):
        body = self._body(request, schemas.CaseChangeSchema)
        case, actor = self._case_for(request, case_id)
        return self._changed(request, workflow.move_case(self.store, self.config, case, "resolved", actor, body["note"], events.utcnow()))

    @http("POST", "/api/v1/cases/<string:case_id>/assign", allow=CASES_ACT,
          summary="Reassign a case to a worker: of its grid (its grid head, leads), of another grid (the command centre)",
          body=schemas.AssignSchema, **CASE_CHANGE)
    def assign(self, request, case_id):
        body = self._body(request, schemas.AssignSchema)
        now = events.utcnow()
        snapshot = self._snapshot(now)
        case, actor = self._case_for(request, case_id)
        access.require_assignment(request.caller, snapshot, case, body["grid_id"] or case.get("grid_id"))
        return self._changed(request, workflow.assign_case(
            self.store, snapshot, self.config, case, body["worker_id"], body["grid_id"], actor, body["note"], now))

    @http("POST", "/api/v1/cases/<string:case_id>/place", allow=CASES_DISPATCH, summary="Place a triage case in a grid", body=schemas.PlaceSchema, **CASE_CHANGE)
    def place(self, request, case_id):
        body = self._body(request, schemas.PlaceSchema)
        now = events.utcnow()
        snapshot = self._snapshot(now)
        case, actor = self._case_for_dispatcher(request, case_id, snapshot, body["grid_id"])
        return self._changed(request, workflow.place_from_triage(
            self.store, snapshot, self.config, case, body["grid_id"], actor, body["note"], now))

    # -- the dispatcher's queue: 派遣, 退单, 改派 ------------------------------------------

    @http("GET", "/api/v1/dispatch-queue", allow=CASES_DISPATCH,
          summary="Cases waiting for the caller to dispatch them (low classifier confidence, no grid, returned), longest waiting first",
          query=schemas.DispatchQueueQuerySchema, responses={200: schemas.DispatchQueuePageSchema})
    def dispatch_queue(self, request):
        query = schemas.DispatchQueueQuerySchema().load(request.args.to_dict())
        everywhere, towns = access.dispatcher_towns(request.caller, self._snapshot(events.utcnow()))
        filters = {} if everywhere else {"dispatch.queue": dispatch.TOWN_QUEUE, "dispatch.town_id": {"$in": sorted(towns)}}
        if "town_id" in query:
            filters["town_id"] = query["town_id"]
        if "reason" in query:
            filters["dispatch.reason"] = query["reason"]
        found, total = self.store.dispatch_queue(filters, (query["page"] - 1) * query["per_page"], query["per_page"])
        return schemas.DispatchQueuePageSchema().dump({
            "items": [views.queued_case(case) for case in found], "page": query["page"], "per_page": query["per_page"], "total": total,
        })

    @http("POST", "/api/v1/cases/<string:case_id>/return", allow=CASES_ACT,
          summary="Return a case that is not yours (退单), with the reason: it waits for a dispatcher",
          body=schemas.ReturnSchema, **CASE_CHANGE)
    def return_case(self, request, case_id):
        body = self._body(request, schemas.ReturnSchema)
        case, actor = self._case_for(request, case_id)
        return self._changed(request, workflow.return_case(self.store, self.config, case, body["reason"], actor, body["note"], events.utcnow()))

    @http("POST", "/api/v1/cases/<string:case_id>/dispatch", allow=CASES_DISPATCH,
          summary="Dispatch a case (派遣/改派) to a grid or a department, correcting its class if it was wrong",
          body=schemas.DispatchSchema, **CASE_CHANGE)
    def dispatch_case(self, request, case_id):
        body = self._body(request, schemas.DispatchSchema)
        now = events.utcnow()
        snapshot = self._snapshot(now)
        case, actor = self._case_for_dispatcher(request, case_id, snapshot, body["grid_id"])
        target_ids = {key: body[key] for key in ("grid_id", "worker_id", "department_id")}
        return self._changed(request, workflow.dispatch_case(
            self.store, snapshot, self.classifier, self.config, case, target_ids, body["subclass"], actor, body["note"], now))

    @http("GET", "/api/v1/taxonomy", allow=REGISTRY_READ, summary="The classes requests are classified into: major classes and their subclasses",
          responses={200: schemas.TaxonomyViewSchema})
    def taxonomy(self, request):
        return schemas.TaxonomyViewSchema().dump(views.taxonomy_view(self.classifier.taxonomy))

    @http("GET", "/api/v1/classifier/examples", allow=CLASSIFIER_EXAMPLES,
          summary="Classes dispatchers confirmed or corrected, oldest first: labelled examples for the classifier's corpus",
          query=schemas.LabelledExampleQuerySchema, responses={200: schemas.LabelledExamplePageSchema})
    def labelled_examples(self, request):
        query = schemas.LabelledExampleQuerySchema().load(request.args.to_dict())
        found, total = self.store.labelled_examples_since(query.get("since"), (query["page"] - 1) * query["per_page"], query["per_page"])
        return schemas.LabelledExamplePageSchema().dump({"items": found, "page": query["page"], "per_page": query["per_page"], "total": total})

    @http("POST", "/api/v1/cases/<string:case_id>/escalate", allow=CASES_ACT, summary="Escalate a case one level up", body=schemas.EscalateSchema, **CASE_CHANGE)
    def escalate(self, request, case_id):
        body = self._body(request, schemas.EscalateSchema)
        now = events.utcnow()
        case, actor = self._case_for(request, case_id)
        return self._changed(request, workflow.escalate_case(
            self.store, self._snapshot(now), self.config, case, actor, body["note"], body["department_id"], now))

    @http("POST", "/api/v1/cases/<string:case_id>/steps", allow=CASES_ACT, summary="Record one of the five steps", body=schemas.StepSchema, **CASE_CHANGE)
    def record_step(self, request, case_id):
        body = self._body(request, schemas.StepSchema)
        case, actor = self._case_for(request, case_id)
        return self._changed(request, workflow.record_step(self.store, case, body["step"], actor, body["note"], events.utcnow()))

    @http("POST", "/api/v1/cases/<string:case_id>/notes", allow=CASES_ACT, summary="Add a note to a case's timeline", body=schemas.NoteSchema, **CASE_CHANGE)
    def add_note(self, request, case_id):
        body = self._body(request, schemas.NoteSchema)
        case, actor = self._case_for(request, case_id)
        return self._changed(request, workflow.add_note(self.store, case, actor, body["note"], events.utcnow()))

    # -- the resident ------------------------------------------------------------------

    @http("POST", "/api/v1/follow-up/<string:token>", allow=CASES_FOLLOW_UP,
          summary="Record the resident's answer to the follow-up (回访), with the one-time token of the follow-up message",
          body=schemas.FollowUpSchema, responses={200: schemas.FollowUpAnswerSchema}, errors=(403, 404, 409))
    def follow_up(self, request, token):
        """The token comes in the follow-up message (``follow_up_requested``) and works once: a used or
        expired one is refused with 403 (`follow_up_token_refused`), one never issued or replaced by a later
        resolution's is 404. The answer says where the request stands, nothing of the people handling it."""
        body = self._body(request, schemas.FollowUpSchema)
        case_id, entries = workflow.record_follow_up(
            self.store, self.config, token, body["solved"], body["satisfaction"], body["note"], events.utcnow())
        self._publish(case_id, entries)
        return schemas.FollowUpAnswerSchema().dump(self.store.get_case(case_id))

    # -- the scorecard (考核指标) -------------------------------------------------------

    @http("GET", "/api/v1/indicators", allow=INDICATORS_READ,
          summary="The scorecard (考核指标) of a period by grid, community, town, department or worker, as JSON or CSV",
          query=schemas.IndicatorQuerySchema, responses={200: {"application/json": schemas.ScorecardSchema, "text/csv": None}},
          errors=(403,))
    def scorecard(self, request):
        """Rows the caller's area holds (a wider level than theirs is 403); care's and study's
        figures join them by grid, community and town when those services answer."""
        query = schemas.IndicatorQuerySchema().load(request.args.to_dict())
        now = events.utcnow()
        snapshot = self._snapshot(now)
        by, area = query["by"], access.area_of(request.caller, snapshot)
        within = indicators.case_filters_for(area, by)
        period = indicators.period_named(query, now, self._county_clock())
        found = self.store.cases_for_period(period.start, period.end, indicators.CASE_FIELDS, within)
        rows, notes = self.partners.add_figures(indicators.scorecard(found, period, by), by, period,
                                                lambda key: indicators.row_in_scope(by, key, area, snapshot.index.grids))
        if query["format"] == "csv":
            filename = f"indicators-{by}-{period.first_day}-{period.last_day}.csv"
            return Response(indicators.as_csv(by, rows), content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        return schemas.ScorecardSchema().dump({"by": by, "from_": period.first_day, "to": period.last_day, "rows": rows, "notes": notes})

    # -- timers ---------------------------------------------------------------------

    @configured_timer("INDICATORS", "GAUGE_INTERVAL_SECONDS", default=60, eager=True)
    def refresh_scorecard_gauges(self):
        now = events.utcnow()
        clock = self._county_clock()
        month = indicators.period_containing("month", now.astimezone(clock).date(), clock)
        rows = indicators.scorecard(self.store.cases_for_period(month.start, month.end, indicators.CASE_FIELDS), month, "town")
        for town_id, counts in indicators.town_counts(rows, self._snapshot(now).towns).items():
            for figure, value in counts.items():
                metrics.SCORECARD.labels(town_id, figure).set(value)

    @configured_timer("SLA", "CHECK_INTERVAL_SECONDS", default=30)
    def check_deadlines(self):
        now = events.utcnow()
        for case_id, entries in workflow.check_deadlines(self.store, self._snapshot(now), self.config, now):
            self._publish(case_id, entries)
        counts = self.store.count_open_by_status()
        for status in OPEN_STATUSES:
            metrics.OPEN_CASES.labels(status).set(counts.get(status, 0))
        metrics.TRIAGE_QUEUE.set(self.store.count_triage())
        for reason, waiting in self.store.count_waiting_by_reason(dispatch.WAIT_REASONS).items():
            metrics.DISPATCH_QUEUE.labels(reason).set(waiting)

    @configured_timer("OUTBOX", "INTERVAL_SECONDS", default=5)
    def publish_outbox(self):
        grace = float(self.config["OUTBOX"]["GRACE_SECONDS"])
        cutoff = events.utcnow() - timedelta(seconds=grace)
        for case in self.store.cases_with_stale_outbox(cutoff):
            self._publish(case["_id"], case["outbox"])

    # -- operations -----------------------------------------------------------------

    def health_details(self):
        return {"registry_version": self.store.registry_edition()}

    # -- shared steps ---------------------------------------------------------------

    def _snapshot(self, now):
        return self.registry.current(self.store, now)

    def _county_clock(self):
        return ZoneInfo(self.config["INDICATORS"]["TIMEZONE"])

    def _body(self, request, schema_cls):
        body = read_json_body(request)
        if request.caller is not None and "actor" in body:
            # clients written before identity send who acts; only the caller may act as the caller
            if body.pop("actor") != request.caller.subject:
                raise Forbidden("You act as yourself: the token's subject.", {"actor": [f"Must be {request.caller.subject} or left out."]})
        return schema_cls().load(body)

    def _case_for(self, request, case_id):
        """The case as read and who acts on it, or 404, or 403 outside the caller's area."""
        case = workflow.load_case(self.store, case_id)
        role = access.require_case_access(request.caller, self._snapshot(events.utcnow()), case)
        return case, Actor(request.caller.subject, role)

    def _case_for_dispatcher(self, request, case_id, snapshot, grid_id):
        """The case as read and the dispatcher acting on it (sending it to ``grid_id``, if
        named), or 404, or 403 outside their queue."""
        case = workflow.load_case(self.store, case_id)
        grid = snapshot.grid(grid_id) if grid_id else None
        return case, Actor(request.caller.subject, access.require_dispatcher_of(request.caller, snapshot, case, grid))

    def _case_view(self, request, case):
        caller = request.caller
        role = access.case_role(caller, self._snapshot(events.utcnow()), case)
        reader = access.reporter_reader(caller, role, case)
        if reader:
            # who read a resident's name and phone, on which case, why (never the data)
            log.info("reporter data read", extra={"audit": "reporter_data", "subject": caller.subject, "role": role,
                                                  "case_id": case["_id"], "reason": reader})
        return schemas.CaseDetailSchema().dump(views.case_detail(case, reader))

    def _changed(self, request, change):
        case_id, entries = change
        self._publish(case_id, entries)
        return self._case_view(request, self.store.get_case(case_id))

    def _publish(self, case_id, outbox):
        workflow.publish_outbox(self.store, self.dispatch, self.publish_result, case_id, outbox)
