"""Intake: the ways a resident's request comes in, and how its tracking view is kept."""
import logging

from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from wangge import events
from wangge.auth import ServiceCredentials
from wangge.grid_directory import GridRecords
from wangge.http import ApiError, ErrorSchema, NotFound, http, idempotency_key, read_body, read_json_body
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.reliable import event_handler
from wangge.timers import configured_timer
from wangge.integrators import SOURCE_PATTERN
from wangge.permissions import INTEGRATOR_KEYS, OPEN311
from wangge.permissions import REQUESTS_FILE, REQUESTS_LOOKUP, REQUESTS_TRACK, SENTIMENT_LOG_READ, WECOM_CALLBACK

from services.intake import access, metrics, submissions, views, open311, wecom
from services.intake.background import Announcements, announce
from services.intake.inbound import inbound, sending_source
from services.intake.open311 import Open311Error
from services.intake.open311_schemas import (
    FORM, Open311DiscoverySchema, Open311FiledSchema, Open311KeyIssuedSchema, Open311KeyListSchema, Open311KeyQuerySchema,
    Open311KeyRevokedSchema, Open311QuerySchema, Open311RequestFormSchema, Open311ServiceDefinitionSchema, Open311ServiceRequestSchema,
    Open311ServiceSchema, Open311TokenSchema, documented,
)
from services.intake.schemas import (
    CHANNELS, HttpRequestSchema, InboundRequestSchema, LookupSchema, RequestFiledSchema, RequestListSchema,
    RequestViewSchema, SentimentLogSchema, SentimentQuerySchema,
)
from services.intake.schemas import WeComCallbackQuerySchema, WeComVerifyQuerySchema
from services.intake.storage import RequestStore
from services.intake.tracking import canonical_tracking_no
from services.intake.taxonomy import RoutingTaxonomy, TaxonomyUnavailable

log = logging.getLogger(__name__)


class UnknownRequest(Exception):
    """A case event names a request intake does not have (retried, then dead-lettered)."""


class Grids(DependencyProvider):
    """Routing's grid records (who works in, heads and leads a grid), read over HTTP with intake's own token and cached."""

    def setup(self):
        settings = self.container.config["REGISTRY"]
        credentials = ServiceCredentials.from_config(self.container.config["AUTH"])
        self.records = GridRecords(settings["ROUTING_URL"], float(settings["CACHE_SECONDS"]), float(settings["TIMEOUT_SECONDS"]),
                                   credentials.authorization)

    def get_dependency(self, worker_ctx):
        return self.records


class Taxonomy(DependencyProvider):
    """Routing's taxonomy (Open311's services), read over HTTP with intake's own token and cached."""

    def setup(self):
        config = self.container.config
        credentials = ServiceCredentials.from_config(config["AUTH"])
        self.taxonomy = RoutingTaxonomy(config["REGISTRY"]["ROUTING_URL"], float(config["OPEN311"]["TAXONOMY_CACHE_SECONDS"]),
                                        float(config["REGISTRY"]["TIMEOUT_SECONDS"]), credentials.authorization)

    def get_dependency(self, worker_ctx):
        return self.taxonomy


class IntakeService(HealthAndMetrics):
    name = "intake"

    store = Storage(RequestStore)
    # mandatory: an event nobody is bound to receive raises instead of vanishing,
    # and the request stays pending for the timer.
    dispatch = EventDispatcher(mandatory=True)
    # a stored request is announced beside the answer, not before it
    announcements = Announcements()
    config = Config()
    grids = Grids()
    taxonomy = Taxonomy()
    wecom_robot = wecom.WeComSettings()
    entrypoint_metrics = EntrypointMetrics()

    # -- ways in ------------------------------------------------------------

    @http("POST", "/api/v1/requests", allow=REQUESTS_FILE, summary="File a request", body=HttpRequestSchema, headers=("Idempotency-Key",),
          responses={201: RequestFiledSchema, 200: RequestFiledSchema}, errors=(403,))
    def file_request(self, request):
        """An integrator's token files under its own source; anyone else's request is
        filed under its channel. An `Idempotency-Key` is compared only with the keys of
        the same sender: residents without a token, an integrator's system, or the
        person or service the token names."""
        channel = "unknown"
        try:
            body = read_json_body(request)
            channel = body.get("channel") if body.get("channel") in CHANNELS else "unknown"
            fields = HttpRequestSchema().load(body)
        except ValidationError as error:
            self._count_invalid(channel, error.messages, HttpRequestSchema)
            raise
        except ApiError as error:
            self._count_invalid(channel, error.fields or {}, HttpRequestSchema)
            raise
        source = access.filing_source(request.caller, fields["channel"], fields.get("source"))
        key = idempotency_key(request)
        filing = self._file(fields, fields["channel"], source, key and f"http:{access.idempotency_scope(request.caller)}:{key}")
        request_doc = filing.request
        body = RequestFiledSchema().dump({
            "tracking_no": request_doc["tracking_no"],
            "request_id": request_doc["_id"],
            "status": request_doc["status"],
            "url": f"/api/v1/requests/{request_doc['tracking_no']}",
        })
        return (201 if filing.created else 200), body

    @inbound()
    def receive_inbound(self, message):
        try:
            fields = InboundRequestSchema().load(message["payload"])
            source = sending_source(message["routing_key"], fields["source"])
        except ValidationError as error:
            self._count_invalid("external", error.messages, InboundRequestSchema)
            raise  # dead-lettered with the field errors as its reason
        # one system's message ids say nothing about another's
        self._file(fields, "external", source, f"inbound:{source}:{message['message_id']}")

    # The grid group's WeCom robot (services/intake/wecom.py): WeCom's servers call these,
    # and each call proves itself by its msg_signature.

    @http("GET", "/wecom/callback", allow=WECOM_CALLBACK, summary="WeCom checks the robot's callback URL",
          query=WeComVerifyQuerySchema, responses={200: "text/plain", 403: ErrorSchema, 404: ErrorSchema})
    def verify_wecom_url(self, request):
        """WeCom calls it when the robot's callback settings are saved: the answer is the
        plaintext of `echostr`. `403` when `msg_signature` does not match or `timestamp` is
        more than `WECOM.MAX_CLOCK_SKEW` seconds from now, `400` when
        `echostr` does not decrypt, `404` while WeCom is not configured here."""
        callback = wecom.configured(self.wecom_robot)
        query = WeComVerifyQuerySchema().load(request.args.to_dict())
        return Response(callback.verify_url(query, events.utcnow().timestamp()), content_type="text/plain; charset=utf-8")

    @http("POST", "/wecom/callback", allow=WECOM_CALLBACK, summary="A message to the grid group's robot",
          query=WeComCallbackQuerySchema, body="application/xml",
          responses={200: "application/xml", 403: ErrorSchema, 404: ErrorSchema})
    def receive_wecom_message(self, request):
        """A resident's message @-mentioning the robot in a grid group is filed as a request
        of channel `wechat_group` with the group's id (routing finds the grid by it), the
        sender's WeCom name as the reporter; the answer is the robot's encrypted reply with
        the tracking number. WeCom's resends of a message (the same `MsgId`) file nothing
        more and get the same number. Other messages get a reply saying what to do, or an
        empty answer. `403` when `msg_signature` does not match or `timestamp` is not recent, `400` when the body does
        not decrypt, `404` while WeCom is not configured here."""
        callback = wecom.configured(self.wecom_robot)
        query = WeComCallbackQuerySchema().load(request.args.to_dict())
        message = wecom.read_message(callback.open_message(query, read_body(request), events.utcnow().timestamp()))
        decision = wecom.decide(message)
        reply = decision.reply
        if decision.fields is not None:
            filing = self._file(decision.fields, wecom.CHANNEL, wecom.CHANNEL, wecom.idempotency_key(message))
            reply = wecom.filed_reply(filing.request["tracking_no"], callback.public_url)
        else:
            log.info("wecom message not filed", extra=wecom.loggable(message))
        body = callback.seal(wecom.reply_xml(reply, message.sender_id), query["nonce"]) if reply else ""
        return Response(body, content_type="application/xml; charset=utf-8")

    @event_handler("routing", events.CASE_STATUS_CHANGED)
    def track_case_status(self, message):
        envelope = events.read_event(events.CASE_STATUS_CHANGED, message)
        if not submissions.apply_case_status(self.store, envelope):
            raise UnknownRequest(f"no request with tracking_no {envelope['data']['tracking_no']}")

    @configured_timer("ANNOUNCE", "INTERVAL_SECONDS", default=5)
    def announce_pending(self):
        now = events.utcnow()
        for request in self.store.claim_due_announcements(now, submissions.announce_claim(self.config)):
            announce(self.store, self.dispatch, request)
        metrics.PENDING_ANNOUNCEMENTS.set(self.store.count_pending_announcements())

    # -- reading back ---------------------------------------------------------

    @http("GET", "/api/v1/requests/<string:tracking_no>", allow=REQUESTS_TRACK, summary="Read a request back by its tracking number",
          responses={200: RequestViewSchema}, errors=(404,))
    def get_request(self, request, tracking_no):
        """The public view for anyone; the full view for the command centre and
        `county_admin`, and for an integrator reading a request of its own source."""
        found = self.store.find_by_tracking_no(canonical_tracking_no(tracking_no))
        if found is None:
            raise NotFound(f"No request with tracking number {tracking_no}.", {"tracking_no": ["Unknown tracking number."]})
        return views.full_view(found) if access.sees_in_full(request.caller, found) else views.public_view(found)

    @http("GET", "/api/v1/requests", allow=REQUESTS_LOOKUP, summary="Find requests by the sender's own reference", query=LookupSchema,
          responses={200: RequestListSchema})
    def find_requests(self, request):
        """An integrator looks up its own source only (another is `403` naming `source`);
        the command centre any. Each request in the full view."""
        query = LookupSchema().load(request.args.to_dict())
        access.require_lookup(request.caller, query["source"])
        found = self.store.find_by_external_ref(query["source"], query["external_ref"])
        return {"items": [views.full_view(item) for item in found]}

    @http("GET", "/api/v1/sentiment-log", allow=SENTIMENT_LOG_READ, summary="The 民情日志: requests received and changes of their cases",
          query=SentimentQuerySchema, responses={200: SentimentLogSchema}, errors=(503,))
    def sentiment_log(self, request):
        """The command centre reads every grid's log; anyone else names one grid they
        work in, head, or lead as the head of its community or town (`grid_id`), else
        `403` naming it. Routing's record of the grid says who they are."""
        query = SentimentQuerySchema().load(request.args.to_dict())
        grid_id = access.sentiment_log_grid(request.caller, query.get("grid_id"), self.grids)
        entries = self.store.sentiment_entries(grid_id, query.get("since"), query["limit"])
        return SentimentLogSchema().dump({"items": views.sentiment_entries(entries)})

    # -- Open311 GeoReport v2 (services/intake/open311.py): the answer's format is the
    # path's extension, errors included (the standard's list of {code, description})

    @http("GET", "/open311/v2/discovery.<string:fmt>", allow=OPEN311, summary="Open311: where this endpoint is and what it speaks",
          responses=documented(Open311DiscoverySchema()))
    @open311.answers
    def open311_discovery(self, request, fmt):
        settings = self.config["OPEN311"]
        return open311.answer(fmt, "discovery", open311.discovery(
            open311.base_url(settings["PUBLIC_URL"], request), settings["CONTACT"], settings["KEY_SERVICE"], settings["CHANGESET"]))

    @http("GET", "/open311/v2/services.<string:fmt>", allow=OPEN311, summary="Open311: the services (the taxonomy's subclasses)",
          responses=documented(Open311ServiceSchema(many=True), 503))
    @open311.answers
    def open311_services(self, request, fmt):
        """Each subclass of routing's taxonomy: `service_code` its code, `group` its major class."""
        return open311.answer(fmt, "services", open311.services(open311.catalogue(self.taxonomy.current())))

    @http("GET", "/open311/v2/services/<string:service_code>.<string:fmt>", allow=OPEN311, summary="Open311: a service's attributes",
          responses=documented(Open311ServiceDefinitionSchema(), 503))
    @open311.answers
    def open311_service_definition(self, request, service_code, fmt):
        services_by_code = open311.catalogue(self.taxonomy.current())
        return open311.answer(fmt, "service_definition", open311.service_definition(services_by_code, service_code))

    @http("POST", "/open311/v2/requests.<string:fmt>", allow=OPEN311, summary="Open311: file a request (a system's api_key)",
          body={FORM: Open311RequestFormSchema}, headers=("Idempotency-Key",),
          responses={**documented(Open311FiledSchema(many=True), 400, 403, 413, 503), 201: documented(Open311FiledSchema(many=True))[200]})
    @open311.answers
    def open311_file_request(self, request, fmt):
        """Filed as a message of `wangge.inbound` would be: channel `external`, the key's
        system as its source, `service_code` as the class the sender gives (routing
        classifies anyway). `201`, or `200` with the first request's id when the same
        `Idempotency-Key` (or else `attribute[external_ref]`) came from the system before."""
        params = Open311RequestFormSchema().load(open311.read_form(request))
        source = self._open311_source(params["api_key"])
        fields = open311.request_fields(params, open311.catalogue(self.taxonomy.current()))
        filing = self._file(fields, "external", source, open311.idempotency_key(source, idempotency_key(request), params.get("external_ref")))
        return open311.answer(fmt, "service_requests", [open311.filed_entry(filing.request)], 201 if filing.created else 200)

    @http("GET", "/open311/v2/requests.<string:fmt>", allow=OPEN311, summary="Open311: requests, by id or your system's, filtered",
          query=Open311QuerySchema, responses=documented(Open311ServiceRequestSchema(many=True), 400, 403))
    @open311.answers
    def open311_requests(self, request, fmt):
        """By `service_request_id` anyone reads requests as the tracking page shows them;
        with your `api_key`, your system's requests (also address and place). `403`
        for a key that is not (or no longer) valid, or a listing without one."""
        query = Open311QuerySchema().load(request.args.to_dict())
        source = self._open311_source(query["api_key"]) if "api_key" in query else None
        settings = self.config["OPEN311"]
        found = open311.find_requests(self.store, query, source, events.utcnow(), int(settings["MAX_DAYS"]), int(settings["MAX_REQUESTS"]))
        return self._open311_listing(fmt, found, source)

    @http("GET", "/open311/v2/requests/<string:service_request_id>.<string:fmt>", allow=OPEN311, summary="Open311: one request",
          query=Open311KeyQuerySchema, responses=documented(Open311ServiceRequestSchema(many=True), 400, 403))
    @open311.answers
    def open311_request(self, request, service_request_id, fmt):
        query = Open311KeyQuerySchema().load(request.args.to_dict())
        source = self._open311_source(query["api_key"]) if "api_key" in query else None
        return self._open311_listing(fmt, [self._open311_find(service_request_id)], source)

    @http("GET", "/open311/v2/tokens/<string:token>.<string:fmt>", allow=OPEN311, summary="Open311: the request id of a token",
          responses=documented(Open311TokenSchema(many=True)))
    @open311.answers
    def open311_token(self, request, token, fmt):
        """Requests are filed at once: the token is the tracking number (`service_request_id`)."""
        found = self._open311_find(token)
        return open311.answer(fmt, "service_requests", [{"service_request_id": found["tracking_no"], "token": token}])

    # the systems' Open311 API keys: `wangge-admin integrators add|rotate|disable`

    @http("POST", "/api/v1/integrators/<string:source>/open311-key", allow=INTEGRATOR_KEYS,
          summary="Issue a system's Open311 API key (its previous one stops working)", responses={201: Open311KeyIssuedSchema}, errors=(400,))
    def issue_open311_key(self, request, source):
        """The key is in this answer only: intake keeps its SHA-256 digest."""
        new_source(source)
        api_key = open311.new_api_key()
        replaced = self.store.set_open311_key(source, open311.key_digest(api_key), events.utcnow())
        log.info("open311 key issued", extra={"source": source, "replaced": replaced})
        return 201, Open311KeyIssuedSchema().dump({"source": source, "api_key": api_key, "replaced": replaced})

    @http("DELETE", "/api/v1/integrators/<string:source>/open311-key", allow=INTEGRATOR_KEYS,
          summary="Revoke a system's Open311 API key", responses={200: Open311KeyRevokedSchema}, errors=(400, 404))
    def revoke_open311_key(self, request, source):
        checked_source(source)
        if not self.store.remove_open311_key(source):
            raise NotFound(f"{source} holds no Open311 API key.", {"source": ["No Open311 API key."]})
        log.info("open311 key revoked", extra={"source": source})
        return Open311KeyRevokedSchema().dump({"source": source, "revoked": True})

    @http("GET", "/api/v1/integrators/open311-keys", allow=INTEGRATOR_KEYS, summary="The systems holding an Open311 API key",
          responses={200: Open311KeyListSchema})
    def open311_key_holders(self, request):
        return Open311KeyListSchema().dump({"items": self.store.open311_key_holders()})

    # -- shared steps ---------------------------------------------------------

    def _file(self, fields, channel, source, idempotency_key):
        now = events.utcnow()
        filing = submissions.file_request(
            self.store, fields,
            channel=channel, source=source, idempotency_key=idempotency_key, now=now,
            tracking=self.config["TRACKING"], claim_for=submissions.announce_claim(self.config),
        )
        metrics.REQUESTS.labels(channel, "accepted" if filing.created else "duplicate").inc()
        if filing.created:
            log.info("request filed", extra={"tracking_no": filing.request["tracking_no"], "channel": channel, "source": source})
            self.announcements(self.dispatch, filing.request)
        return filing

    def _count_invalid(self, channel, messages, schema_cls):
        metrics.REQUESTS.labels(channel, "invalid").inc()
        metrics.count_validation_failure(messages, set(schema_cls().fields) | {"body"})

    def _open311_source(self, api_key):
        source = self.store.source_of_open311_key(open311.key_digest(api_key))
        if source is None or source in CHANNELS:  # (a channel's: issued before channels were refused)
            raise Open311Error(403, "api_key: Not a valid key (or no longer one).")
        return source

    def _open311_find(self, tracking_no):
        found = self.store.find_by_tracking_no(canonical_tracking_no(tracking_no))
        if found is None:
            raise Open311Error(404, f"No request {tracking_no!r}.")
        return found

    def _open311_listing(self, fmt, found, source):
        """Requests in the standard's form; without routing's taxonomy they read back all the same
        (only `expected_datetime`, and the service of a request not classified yet, need it)."""
        try:
            services_by_code = open311.catalogue(self.taxonomy.current())
        except TaxonomyUnavailable:
            services_by_code = {}
        timezone_name = self.config["TRACKING"]["TIMEZONE"]
        return open311.answer(fmt, "service_requests", [
            open311.request_entry(item, services_by_code, source is not None and item["source"] == source, timezone_name)
            for item in found])


def checked_source(source):
    """A path's source, or ``ApiError`` naming it: what a system's broker account and requests are named by."""
    if not SOURCE_PATTERN.fullmatch(source):
        raise ApiError(f"{source!r} is not a source.", {"source": ["Use 1 to 32 lower-case letters, digits or underscores."]})


def new_source(source):
    """A source a key may be issued for: not a channel, which residents' own requests carry as their source."""
    checked_source(source)
    if source in CHANNELS:
        raise ApiError(f"{source!r} is not a source.", {"source": [f"{source} is a channel residents file through."]})
