"""``GET /health`` and ``GET /metrics``, the same in every service.

Mixed into a service class; the service provides ``name`` and a ``store`` with
``ping()``, and may add to the health answer with ``health_details()``."""
from wangge.http import http
from wangge.metrics import metrics_response


class HealthAndMetrics:
    def health_details(self):
        return {}

    @http("GET", "/health")
    def health(self, request):
        try:
            self.store.ping()
        except Exception as exc:
            return 503, {"status": "unavailable", "service": self.name, "checks": {"store": str(exc).split(",")[0]}}
        return {"status": "ok", "service": self.name, "checks": {"store": "ok"}, **self.health_details()}

    @http("GET", "/metrics")
    def prometheus_metrics(self, request):
        return metrics_response()
