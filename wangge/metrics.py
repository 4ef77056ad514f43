"""Prometheus metrics every service shares: RED per entrypoint, retries and dead letters.

Each process has its own registry; with several replicas, Prometheus scrapes
each and sums. Label values are bounded (service, entrypoint, outcome): never
tracking numbers or people.
"""
import time
from weakref import WeakKeyDictionary

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, disable_created_metrics, generate_latest
from werkzeug.wrappers import Response

# *_created series double what Prometheus stores and nothing here reads them.
disable_created_metrics()

ENTRYPOINT_CALLS = Counter(
    "wangge_entrypoint_calls_total",
    "Entrypoint calls by kind and outcome.",
    ["service", "entrypoint", "kind", "outcome"],
)
ENTRYPOINT_DURATION = Histogram(
    "wangge_entrypoint_duration_seconds",
    "Time spent in an entrypoint's worker.",
    ["service", "entrypoint", "kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HANDLER_RETRIES = Counter(
    "wangge_handler_retries_total",
    "Failed messages sent to their retry queue.",
    ["service", "queue"],
)
DEAD_LETTERED = Counter(
    "wangge_dead_lettered_total",
    "Messages moved to a dead-letter queue.",
    ["service", "dead_letter_queue"],
)

# Most specific first: EventHandler is a Consumer.
_KINDS = ((EventHandler, "event"), (Consumer, "message"), (HttpRequestHandler, "http"), (Rpc, "rpc"), (Timer, "timer"))


def entrypoint_kind(entrypoint):
    for cls, kind in _KINDS:
        if isinstance(entrypoint, cls):
            return kind
    return type(entrypoint).__name__.lower()


class EntrypointMetrics(DependencyProvider):
    """Counts and times every worker of the service it is declared on."""

    def setup(self):
        self.started = WeakKeyDictionary()

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        entrypoint = worker_ctx.entrypoint
        labels = (self.container.service_name, entrypoint.method_name, entrypoint_kind(entrypoint))
        started = self.started.pop(worker_ctx, None)
        if started is not None:
            ENTRYPOINT_DURATION.labels(*labels).observe(time.perf_counter() - started)
        if exc_info is None:
            outcome = answered_outcome(result)
        elif isinstance(exc_info[1], entrypoint.expected_exceptions):
            outcome = "rejected"  # the caller's input was wrong, not the service
        else:
            outcome = "error"
        ENTRYPOINT_CALLS.labels(*labels, outcome).inc()


def answered_outcome(result):
    """An HTTP answer returned, not raised (Open311's errors in the standard's form, a
    readiness or liveness 503), counts by its status: 4xx the caller's, 5xx ours."""
    if isinstance(result, Response):
        status = result.status_code
    elif isinstance(result, tuple) and result and isinstance(result[0], int):
        status = result[0]
    else:
        return "ok"
    return "error" if status >= 500 else "rejected" if status >= 400 else "ok"


def metrics_response():
    # content_type, not mimetype: mimetype would append a second charset
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)
