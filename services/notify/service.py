"""Notify: every case event reaches the people it concerns, once per channel."""
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider

from wangge import events
from wangge.http import NotFound, http, read_json_body
from wangge.metrics import EntrypointMetrics
from wangge.mongo import Storage
from wangge.operations import HealthAndMetrics
from wangge.reliable import event_handler
from wangge.timers import configured_timer

from services.notify import metrics, outgoing, recipients, schemas
from services.notify.channels import build_channels
from services.notify.delivery import FAILED, SENT
from services.notify.storage import NotificationStore
from services.notify.templates import Templates


class Channels(DependencyProvider):
    def setup(self):
        self.channels = build_channels(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.channels


class MessageTemplates(DependencyProvider):
    def setup(self):
        self.templates = Templates()

    def get_dependency(self, worker_ctx):
        return self.templates


class NotifyService(HealthAndMetrics):
    name = "notify"

    store = Storage(NotificationStore)
    channels = Channels()
    templates = MessageTemplates()
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

    @configured_timer("DELIVERY", "INTERVAL_SECONDS", default=1)
    def deliver_due(self):
        for notification_id in self.store.due_ids(events.utcnow()):
            self._claim_and_send(notification_id)
        metrics.HELD.set(self.store.count_held())

    # -- HTTP -----------------------------------------------------------------------

    @http("GET", "/api/v1/notifications")
    def list_notifications(self, request):
        query = schemas.NotificationQuerySchema().load(request.args.to_dict())
        filters = {key: query[key] for key in ("tracking_no", "case_id", "campaign_id", "status") if key in query}
        if "recipient" in query:
            filters["recipient.key"] = query["recipient"]
        found, total = self.store.find(filters, (query["page"] - 1) * query["per_page"], query["per_page"])
        return {"items": schemas.NotificationViewSchema(many=True).dump(found), "total": total}

    @http("GET", "/api/v1/notifications/<string:notification_id>")
    def get_notification(self, request, notification_id):
        return schemas.NotificationViewSchema().dump(self._existing(notification_id))

    @http("POST", "/api/v1/notifications/<string:notification_id>/resend")
    def resend(self, request, notification_id):
        notification = self._existing(notification_id)
        if not self.store.reset_for_resend(notification_id, events.utcnow()):
            return 409, {"error": "not_finished", "message": f"The notification is {notification['status']}: it is still being delivered."}
        self._claim_and_send(notification_id)
        return schemas.NotificationViewSchema().dump(self.store.get(notification_id))

    @http("POST", "/api/v1/alerts")
    def receive_alerts(self, request):
        """Alertmanager's webhook receiver: alerts reach the operators' WeCom group."""
        payload = schemas.AlertmanagerPayloadSchema().load(read_json_body(request))
        envelope = recipients.alert_envelope(payload, events.utcnow())
        chosen = [(recipients.OPERATIONS, f"{recipients.OPS_ALERT}.ops")]
        self._send(outgoing.accept_event(self.store, self.templates, self.config, envelope, chosen, events.utcnow()))
        return {"accepted": len(payload["alerts"])}

    @http("PUT", "/api/v1/preferences/<string:recipient_key>")
    def save_preferences(self, request, recipient_key):
        preferences = schemas.PreferencesSchema().load(read_json_body(request))
        saved = self.store.save_preferences(recipient_key, preferences, events.utcnow())
        return {key: value for key, value in saved.items() if key != "wecom_key"} | {"recipient": saved["_id"]}

    # -- shared steps -----------------------------------------------------------------

    def _notify(self, event_type, message):
        envelope = events.read_event(event_type, message)
        chosen = outgoing.recipients_of(envelope)
        self._send(outgoing.accept_event(self.store, self.templates, self.config, envelope, chosen, events.utcnow()))

    def _claim_and_send(self, notification_id):
        notification = outgoing.claim(self.store, self.config, notification_id, events.utcnow())
        if notification is not None:
            self._send([notification])

    def _send(self, notifications):
        for taken in notifications:
            now = events.utcnow()
            outcome = outgoing.send(self.store, self.channels, self.config, taken, now)
            notification = outcome.notification
            metrics.ATTEMPTS.labels(notification["channel"], "ok" if outcome.status == SENT else "error").inc()
            if outcome.status in (SENT, FAILED):
                metrics.NOTIFICATIONS.labels(outcome.status, notification["channel"], notification["kind"]).inc()
                self._announce(notification, outcome)
            if outcome.status == SENT:
                metrics.LATENCY.labels(notification["channel"]).observe(outgoing.delivery_latency(notification, now))

    def _announce(self, notification, outcome):
        event_type = events.NOTIFICATION_SENT if outcome.status == SENT else events.NOTIFICATION_FAILED
        self.dispatch(event_type, events.build_event(event_type, {
            "notification_id": notification["_id"], "source_event_id": notification["event_id"], "kind": notification["kind"],
            "recipient_role": notification["recipient"]["role"], "channel": notification["channel"], "status": outcome.status,
            "attempts": notification["attempts"], "case_id": notification.get("case_id"),
            "tracking_no": notification.get("tracking_no"), "error": outcome.error,
        }))

    def _existing(self, notification_id):
        notification = self.store.get(notification_id)
        if notification is None:
            raise NotFound(f"No notification {notification_id}.")
        return notification
