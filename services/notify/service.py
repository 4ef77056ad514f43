"""Notify: every case event reaches the people it concerns, once per channel."""
import logging
from datetime import timedelta

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher

from wangge import events
from wangge.http import ErrorSchema, NotFound, http, read_json_body
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.reliable import event_handler
from wangge.permissions import ALERTS_POST, NOTIFICATIONS_READ, NOTIFICATIONS_RESEND, PREFERENCES_WRITE
from wangge.timers import configured_timer

from services.notify import delivery, metrics, outgoing, recipients, resends, schemas
from services.notify.dependencies import MessageTemplates, ResendPolicy, Sending
from services.notify.storage import NotificationStore

log = logging.getLogger(__name__)


class NotifyService(HealthAndMetrics):
    name = "notify"

    store = Storage(NotificationStore, lambda config: {"preferences_refresh_seconds": float(config["PREFERENCES"]["REFRESH_SECONDS"])})
    # handlers and HTTP only store notifications and hand them to the sender
    sender = Sending()
    templates = MessageTemplates()
    resend_limit = ResendPolicy()
    # notification_sent/failed are for whoever wants them; no one has to listen
    dispatch = EventDispatcher()
    config = Config()
    entrypoint_metrics = EntrypointMetrics()

    # -- case events (one entrypoint each: nameko binds a queue per handler) ------

    @event_handler("routing", events.CASE_ASSIGNED)
    def on_case_assigned(self, message):
        self._notify(events.CASE_ASSIGNED, message)

    @event_handler("routing", events.CASE_STATUS_CHANGED)
    def on_case_status_changed(self, message):
        self._notify(events.CASE_STATUS_CHANGED, message)

    @event_handler("routing", events.CASE_ESCALATED)
    def on_case_escalated(self, message):
        self._notify(events.CASE_ESCALATED, message)

    @event_handler("routing", events.CASE_MERGED)
    def on_case_merged(self, message):
        self._notify(events.CASE_MERGED, message)

    @event_handler("routing", events.CASE_CLOSED)
    def on_case_closed(self, message):
        self._notify(events.CASE_CLOSED, message)

    @event_handler("routing", events.FOLLOW_UP_REQUESTED)
    def on_follow_up_requested(self, message):
        self._notify(events.FOLLOW_UP_REQUESTED, message)

    @event_handler("routing", events.SLA_WARNING)
    def on_sla_warning(self, message):
        self._notify(events.SLA_WARNING, message)

    @event_handler("routing", events.SLA_BREACHED)
    def on_sla_breached(self, message):
        self._notify(events.SLA_BREACHED, message)

    # -- study events -------------------------------------------------------------

    @event_handler("study", events.CAMPAIGN_DUE)
    def on_campaign_due(self, message):
        self._notify(events.CAMPAIGN_DUE, message)

    @event_handler("study", events.STUDY_REMINDER_DUE)
    def on_study_reminder_due(self, message):
        self._notify(events.STUDY_REMINDER_DUE, message)

    # -- care events --------------------------------------------------------------

    @event_handler("care", events.VISIT_OVERDUE)
    def on_visit_overdue(self, message):
        self._notify(events.VISIT_OVERDUE, message)

    @configured_timer("DELIVERY", "INTERVAL_SECONDS", default=1)
    def deliver_due(self):
        self.sender.send_due(events.utcnow())
        metrics.HELD.set(self.store.count_held())

    @configured_timer("ANNOUNCE", "INTERVAL_SECONDS", default=1)
    def announce_outcomes(self):
        """Publish the notification_sent/failed not published beside their sends; what the
        broker does not take waits in its announcement."""
        settings = self.config["ANNOUNCE"]
        grace, settle = timedelta(seconds=float(settings["GRACE_SECONDS"])), timedelta(seconds=float(settings["INTERVAL_SECONDS"]))
        in_flight = self.sender.announcer.in_flight if self.sender.announcer else frozenset()
        published = []
        try:
            for announcement_id, outcomes in outgoing.announcements_due(self.store, self.sender.owner, events.utcnow(), grace,
                                                                        settle, in_flight):
                for event in outcomes:
                    try:
                        self.dispatch(event["event_type"], event)
                    except Exception as exc:
                        # what went out of this batch goes out again with it: the same event ids
                        log.warning("notification outcome not announced yet", extra={
                            "notification_id": event["data"]["notification_id"], "reason": f"{type(exc).__name__}: {exc}"})
                        return
                published.append(announcement_id)
        finally:
            self.store.clear_announcements(published)

    # -- HTTP -----------------------------------------------------------------------

    @http("GET", "/api/v1/notifications", allow=NOTIFICATIONS_READ, summary="Notifications, newest first, paged", query=schemas.NotificationQuerySchema,
          responses={200: schemas.NotificationPageSchema})
    def list_notifications(self, request):
        query = schemas.NotificationQuerySchema().load(request.args.to_dict())
        filters = {key: query[key] for key in ("tracking_no", "case_id", "campaign_id", "status") if key in query}
        if "recipient" in query:
            filters["recipient.key"] = query["recipient"]
        found, total = self.store.find(filters, (query["page"] - 1) * query["per_page"], query["per_page"])
        return schemas.NotificationPageSchema().dump({"items": found, "total": total})

    @http("GET", "/api/v1/notifications/<string:notification_id>", allow=NOTIFICATIONS_READ, summary="One notification",
          responses={200: schemas.NotificationViewSchema}, errors=(404,))
    def get_notification(self, request, notification_id):
        return schemas.NotificationViewSchema().dump(self._existing(notification_id))

    @http("POST", "/api/v1/notifications/<string:notification_id>/resend", allow=NOTIFICATIONS_RESEND, summary="Send a failed (or sent) notification again",
          responses={200: schemas.NotificationViewSchema, 429: ErrorSchema}, errors=(404, 409))
    def resend(self, request, notification_id):
        """Goes out now, or at the end of quiet hours for a resident's text. 429 (naming
        the ``limit``, with ``Retry-After``) once the recipient has had as many re-sends
        as the limit allows within its window (by default 3 an hour)."""
        notification = self._existing(notification_id)
        resent = resends.resend(self.store, self.resend_limit, self.config["QUIET_HOURS"], notification,
                                request.caller.subject, events.utcnow())
        if resent["status"] == delivery.PENDING:
            self.sender.offer([resent])
        return schemas.NotificationViewSchema().dump(resent)

    @http("POST", "/api/v1/alerts", allow=ALERTS_POST, summary="Alertmanager's webhook: alerts for the operators' WeCom group",
          body=schemas.AlertmanagerPayloadSchema, responses={200: schemas.AlertsAcceptedSchema})
    def receive_alerts(self, request):
        """Alertmanager's webhook receiver: alerts reach the operators' WeCom group."""
        payload = schemas.AlertmanagerPayloadSchema().load(read_json_body(request))
        envelope = recipients.alert_envelope(payload, events.utcnow())
        chosen = [(recipients.OPERATIONS, f"{recipients.OPS_ALERT}.ops")]
        self.sender.offer(outgoing.accept_event(self.store, self.templates, self.config, envelope, chosen, events.utcnow()))
        return schemas.AlertsAcceptedSchema().dump({"accepted": len(payload["alerts"])})

    @http("PUT", "/api/v1/preferences/<string:recipient_key>", allow=PREFERENCES_WRITE, summary="Choose a recipient's channel (a person id or resident:<tracking_no>)",
          body=schemas.PreferencesSchema, responses={200: schemas.PreferencesViewSchema})
    def save_preferences(self, request, recipient_key):
        recipients.require_say_over(request.caller, recipient_key)
        preferences = schemas.PreferencesSchema().load(read_json_body(request))
        saved = self.store.save_preferences(recipient_key, preferences, events.utcnow())
        return schemas.PreferencesViewSchema().dump(saved)

    # -- operations and shared steps --------------------------------------------------

    def health_details(self):
        return {"channels": self.sender.states()}

    def _notify(self, event_type, message):
        envelope = events.read_event(event_type, message)
        chosen = outgoing.recipients_of(envelope)
        self.sender.offer(outgoing.accept_event(self.store, self.templates, self.config, envelope, chosen, events.utcnow(),
                                                self.sender.holding))

    def _existing(self, notification_id):
        notification = self.store.get(notification_id)
        if notification is None:
            raise NotFound(f"No notification {notification_id}.")
        return notification
