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
from wangge.logs import short_error
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.reliable import event_handler
from wangge.timers import configured_timer
from wangge.permissions import REQUESTS_FILE, REQUESTS_LOOKUP, REQUESTS_TRACK, SENTIMENT_LOG_READ, WECOM_CALLBACK

from services.intake import access, metrics, submissions, views, wecom
from services.intake.inbound import inbound, sending_source
from services.intake.schemas import (
    CHANNELS, HttpRequestSchema, InboundRequestSchema, LookupSchema, RequestFiledSchema, RequestListSchema,
    RequestViewSchema, SentimentLogSchema, SentimentQuerySchema,
)
from services.intake.schemas import WeComCallbackQuerySchema, WeComVerifyQuerySchema
from services.intake.storage import RequestStore
from services.intake.tracking import canonical_tracking_no

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


class IntakeService(HealthAndMetrics):
    name = "intake"

    store = Storage(RequestStore)
    # mandatory: an event nobody is bound to receive raises instead of vanishing,
    # and the request stays pending for the timer.
    dispatch = EventDispatcher(mandatory=True)
    config = Config()
    grids = Grids()
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
        plaintext of `echostr`. `403` when `msg_signature` does not match, `400` when
        `echostr` does not decrypt, `404` while WeCom is not configured here."""
        callback = wecom.configured(self.wecom_robot)
        query = WeComVerifyQuerySchema().load(request.args.to_dict())
        return Response(callback.verify_url(query), content_type="text/plain; charset=utf-8")

    @http("POST", "/wecom/callback", allow=WECOM_CALLBACK, summary="A message to the grid group's robot",
          query=WeComCallbackQuerySchema, body="application/xml",
          responses={200: "application/xml", 403: ErrorSchema, 404: ErrorSchema})
    def receive_wecom_message(self, request):
        """A resident's message @-mentioning the robot in a grid group is filed as a request
        of channel `wechat_group` with the group's id (routing finds the grid by it), the
        sender's WeCom name as the reporter; the answer is the robot's encrypted reply with
        the tracking number. WeCom's resends of a message (the same `MsgId`) file nothing
        more and get the same number. Other messages get a reply saying what to do, or an
        empty answer. `403` when `msg_signature` does not match, `400` when the body does
        not decrypt, `404` while WeCom is not configured here."""
        callback = wecom.configured(self.wecom_robot)
        query = WeComCallbackQuerySchema().load(request.args.to_dict())
        message = wecom.read_message(callback.open_message(query, read_body(request)))
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
            self._announce(request)
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
            self._announce(filing.request)
        return filing

    def _announce(self, request):
        try:
            submissions.announce(self.store, self.dispatch, request, events.utcnow())
        except Exception as exc:
            # Stored and pending: the timer announces it once the broker takes it.
            metrics.ANNOUNCE_FAILURES.inc()
            log.warning("request_received not published yet", extra={"tracking_no": request["tracking_no"], "reason": short_error(exc)})

    def _count_invalid(self, channel, messages, schema_cls):
        metrics.REQUESTS.labels(channel, "invalid").inc()
        metrics.count_validation_failure(messages, set(schema_cls().fields) | {"body"})
