"""Routing's business metrics. Counters and histograms are per process (sum the
replicas); the gauges are counts read from the shared store, so every replica
reports the same value (take the max). Labels stay bounded: towns, categories,
classes and reasons come from the registry, the taxonomy and the code.

The indicators of dispatch (准确派遣率) come from these: the auto-dispatch rate is
``classified{decision="auto"}`` over all ``classified``; the correction rate of a
class is its ``class_corrections`` over its ``classified``; returns by reason."""
from prometheus_client import Counter, Gauge, Histogram

HOURS = 3600
CASES_OPENED = Counter("wangge_routing_cases_opened_total", "Cases opened, by town and category.", ["town", "category"])
OPEN_CASES = Gauge("wangge_routing_open_cases", "Open cases by status (refreshed by the SLA timer).", ["status"])
TRIAGE_QUEUE = Gauge("wangge_routing_triage_queue", "Cases waiting in a town triage queue for a grid.")
MERGES = Counter("wangge_routing_merges_total", "Requests merged into an open case as duplicates.")
MERGE_CONFLICTS = Counter(
    "wangge_routing_merge_conflicts_total", "Merges that lost a race for their case to another change and were tried again.",
)
FIRST_RESPONSE = Histogram(
    "wangge_routing_first_response_seconds", "Time from opening to the first response.",
    buckets=(60, 300, 900, 1800, HOURS, 2 * HOURS, 4 * HOURS, 8 * HOURS, 24 * HOURS, 72 * HOURS),
)
RESOLUTION = Histogram(
    "wangge_routing_resolution_seconds", "Time from opening to resolution.",
    buckets=(HOURS, 4 * HOURS, 12 * HOURS, 24 * HOURS, 72 * HOURS, 7 * 24 * HOURS, 15 * 24 * HOURS, 30 * 24 * HOURS),
)
SLA_WARNINGS = Counter("wangge_routing_sla_warnings_total", "SLA warnings by clock.", ["clock"])
SLA_BREACHES = Counter("wangge_routing_sla_breaches_total", "SLA breaches by clock and town.", ["clock", "town"])
SLA_CHECK_FAILURES = Counter(
    "wangge_routing_sla_check_failures_total", "Cases the SLA timer could not check (each retried after SLA.FAILED_CHECK_RETRY_MINUTES).",
)
ESCALATIONS = Counter("wangge_routing_escalations_total", "Escalations by the level reached.", ["level"])
CLASSIFIED = Counter(
    "wangge_routing_classified_total", "Requests classified, by major class, subclass and decision: auto (dispatched at once) or "
    "dispatcher (below the confidence threshold, waiting with suggestions).", ["major", "subclass", "decision"],
)
CORRECTIONS = Counter(
    "wangge_routing_class_corrections_total", "Cases whose class a dispatcher corrected, by the class routing had given them.",
    ["major", "subclass"],
)
RETURNS = Counter("wangge_routing_returns_total", "Cases returned as not theirs (退单), by reason and the returner's role.", ["reason", "role"])
DISPATCHES = Counter(
    "wangge_routing_dispatches_total", "Cases a dispatcher sent on (派遣/改派), by why they waited "
    "(low_confidence, unlocated, returned) or redispatch for a case that was not waiting.", ["reason"],
)
DISPATCH_QUEUE = Gauge("wangge_routing_dispatch_queue", "Open cases waiting for a dispatcher, by why (refreshed by the SLA timer).", ["reason"])
SCORECARD = Gauge(
    "wangge_routing_scorecard", "The current month's scorecard counts (考核指标) by town, on the county's clock (refreshed "
    "every INDICATORS.GAUGE_INTERVAL_SECONDS); rates are ratios of two counts, e.g. 结案率 = due_closed / (due_to_close - deferred).",
    ["town", "figure"],
)
