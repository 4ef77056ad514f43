"""Liveness, readiness and ``GET /metrics``, the same in every service.

Mixed into a service class; the service provides ``name``, ``config`` and a
``store`` with ``ping()``, and may add to the readiness answer with
``health_details()`` (which may read the store).

* ``GET /health/live``: the process answers HTTP; checks nothing, so an outage
  of the broker or the store never gets a healthy process restarted.
* ``GET /health/ready`` (and ``GET /health``): the broker and the store each
  answer within ``READINESS_TIMEOUT_SECONDS``; otherwise 503 naming what is
  missing, so a load balancer or compose stops sending work here meanwhile.
"""
import pymongo
from kombu import Connection

from wangge.http import http
from wangge.logs import short_error
from wangge.metrics import metrics_response


class HealthAndMetrics:
    def health_details(self):
        return {}

    @http("GET", "/health/live")
    def liveness(self, request):
        return {"status": "alive", "service": self.name}

    @http("GET", "/health")
    def health(self, request):
        return self.readiness(request)

    @http("GET", "/health/ready")
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

    @http("GET", "/metrics")
    def prometheus_metrics(self, request):
        return metrics_response()
