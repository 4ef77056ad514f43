"""Intake's business metrics (per process; Prometheus sums replicas)."""
from prometheus_client import Counter, Gauge

REQUESTS = Counter(
    "wangge_intake_requests_total",
    "Requests reaching intake, by channel and outcome (accepted, duplicate, invalid).",
    ["channel", "outcome"],
)
VALIDATION_FAILURES = Counter(
    "wangge_intake_validation_failures_total",
    "Rejected requests by offending top-level field.",
    ["field"],
)
PENDING_ANNOUNCEMENTS = Gauge(
    "wangge_intake_pending_announcements",
    "Stored requests whose request_received event is not yet confirmed.",
)
ANNOUNCE_FAILURES = Counter(
    "wangge_intake_announce_failures_total",
    "Attempts to publish request_received that failed (the request stays pending).",
)


def count_validation_failure(messages, known_fields):
    # Unknown field names come from senders: keep them out of label values.
    for field in messages:
        VALIDATION_FAILURES.labels(field if field in known_fields else "unknown_field").inc()
