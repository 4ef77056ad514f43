"""Liveness, readiness and ``GET /metrics``, the same in every service.

Mixed into a service class; the service provides ``name``, ``config`` and a
``store`` with ``ping()``, and may add to the readiness answer with
``health_details()`` (which may read the store).

* ``GET /health/live``: the process answers HTTP, and its message consumer is
  still looking for work: one that has not for ``CONSUMER_STALL_SECONDS`` while
  the broker answers is stuck (503, so the orchestrator restarts the process). An
  outage of the broker or the store never gets a healthy process restarted.
* ``GET /health/ready`` (and ``GET /health``): the broker and the store each
  answer within ``READINESS_TIMEOUT_SECONDS``; otherwise 503 naming what is
  missing, so a load balancer or compose stops sending work here meanwhile.
* ``GET /openapi.json``: the service's HTTP API as an OpenAPI 3.1 document.
"""
import pymongo
from kombu import Connection
from marshmallow import INCLUDE, Schema, fields
from nameko.extensions import DependencyProvider

from wangge.amqp_consumer import ResilientQueueConsumer
from wangge.http import http
from wangge.logs import short_error
from wangge.metrics import metrics_response
from wangge.openapi import openapi_document
from wangge.permissions import PUBLIC


DEFAULT_CONSUMER_STALL_SECONDS = 120


class LivenessSchema(Schema):
    """The process answers, and its consumer is not stuck."""

    status = fields.String(required=True, metadata={"description": "alive, or stuck (with status 503)."})
    service = fields.String(required=True)
    consumer_idle_seconds = fields.Float(allow_none=True, metadata={
        "description": "Since the message consumer last looked for deliveries (at least once a second while it runs) "
                       "or tried to connect; null for a service that consumes nothing."})
    reason = fields.String(metadata={"description": "Why the process is stuck (with status 503)."})


class ConsumerWatch(DependencyProvider):
    """The seconds since this process's message consumer last looked for deliveries
    (``None`` if it has none): nameko shares one consumer among a container's entrypoints."""

    def get_dependency(self, worker_ctx):
        consumers = [extension for extension in self.container.shared_extensions.values()
                     if isinstance(extension, ResilientQueueConsumer)]
        return lambda: max((consumer.seconds_since_last_pass() for consumer in consumers), default=None)


class ReadinessSchema(Schema):
    """Whether the broker and the store answer; services add what they know of themselves
    (routing its registry version, notify each channel's circuit breaker)."""

    class Meta:
        unknown = INCLUDE

    status = fields.String(required=True, metadata={"description": "ok, or unavailable (with status 503)."})
    service = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": "broker and store: ok, or why not."})
    missing = fields.List(fields.String(), metadata={"description": "What does not answer (with status 503)."})


class HealthAndMetrics:
    consumer_idle_seconds = ConsumerWatch()

    def health_details(self):
        return {}

    @http("GET", "/health/live", allow=PUBLIC, summary="Liveness: the process answers and its consumer is not stuck",
          responses={200: LivenessSchema, 503: LivenessSchema})
    def liveness(self, request):
        idle = self.consumer_idle_seconds()
        answer = {"service": self.name, "consumer_idle_seconds": None if idle is None else round(idle, 1)}
        limit = float(self.config.get("CONSUMER_STALL_SECONDS", DEFAULT_CONSUMER_STALL_SECONDS))  # (a config file of an earlier release)
        # a consumer away while the broker is away is reconnecting, not stuck
        if idle is not None and idle > limit and self._broker_problem(float(self.config["READINESS_TIMEOUT_SECONDS"])) is None:
            return 503, {"status": "stuck", **answer,
                         "reason": f"the message consumer has not looked for deliveries for {idle:.0f} s while the broker answers"}
        return {"status": "alive", **answer}

    @http("GET", "/health", allow=PUBLIC, summary="Readiness (as /health/ready)", responses={200: ReadinessSchema, 503: ReadinessSchema})
    def health(self, request):
        return self.readiness(request)

    @http("GET", "/health/ready", allow=PUBLIC, summary="Readiness: the broker and the store answer", responses={200: ReadinessSchema, 503: ReadinessSchema})
    def readiness(self, request):
        timeout = float(self.config["READINESS_TIMEOUT_SECONDS"])
        checks = {"broker": self._broker_problem(timeout), "store": None}
        details = {}
        try:
            # pymongo's timeout bounds server selection too: a store that is away
            # answers within the timeout, not after the client's 5 s default.
            with pymongo.timeout(timeout):
                self.store.ping()
                details = self.health_details()
        except Exception as exc:
            checks["store"] = short_error(exc)
        missing = {name: problem for name, problem in checks.items() if problem}
        answer = {"service": self.name, "checks": {name: problem or "ok" for name, problem in checks.items()}}
        if missing:
            return 503, {"status": "unavailable", "missing": sorted(missing), **answer}
        return {"status": "ok", **answer, **details}

    def _broker_problem(self, timeout):
        try:
            with Connection(self.config["AMQP_URI"], connect_timeout=timeout) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        except Exception as exc:
            return short_error(exc)
        return None

    @http("GET", "/metrics", allow=PUBLIC, summary="Prometheus metrics of this process", responses={200: "text/plain"})
    def prometheus_metrics(self, request):
        return metrics_response()

    @http("GET", "/openapi.json", allow=PUBLIC, summary="This API as an OpenAPI 3.1 document", responses={200: "application/json"})
    def openapi(self, request):
        return openapi_document(type(self))
