"""Liveness, readiness and ``GET /metrics``, the same in every service.

Mixed into a service class; the service provides ``name``, ``config`` and a
``store`` with ``ping()``, and may add to the readiness answer with
``health_details()`` (which may read the store).

* ``GET /health/live``: the process answers HTTP; checks nothing, so an outage
  of the broker or the store never gets a healthy process restarted.
* ``GET /health/ready`` (and ``GET /health``): the broker and the store each
  answer within ``READINESS_TIMEOUT_SECONDS``; otherwise 503 naming what is
  missing, so a load balancer or compose stops sending work here meanwhile.
* ``GET /openapi.json``: the service's HTTP API as an OpenAPI 3.1 document.
"""
import pymongo
from kombu import Connection
from marshmallow import INCLUDE, Schema, fields

from wangge.http import http
from wangge.logs import short_error
from wangge.metrics import metrics_response
from wangge.openapi import openapi_document
from wangge.permissions import PUBLIC


class LivenessSchema(Schema):
    """The process answers."""

    status = fields.String(required=True, metadata={"description": "Always alive."})
    service = fields.String(required=True)


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
    def health_details(self):
        return {}

    @http("GET", "/health/live", allow=PUBLIC, summary="Liveness: the process answers (checks nothing)", responses={200: LivenessSchema})
    def liveness(self, request):
        return {"status": "alive", "service": self.name}

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
