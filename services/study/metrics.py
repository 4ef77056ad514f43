"""Study's business metrics. The gauges are read from the shared store, so every
replica reports the same value (take the max); campaigns are few and towns are
the registry's, so the labels stay bounded."""
from prometheus_client import Counter, Gauge

DISPATCHES = Counter("wangge_study_dispatches_total", "Study dispatches published, skipped, or not taken by the broker (published again later), by kind.", ["kind", "outcome"])
CHECKINS = Counter("wangge_study_checkins_total", "Check-ins recorded (new ones only), by kind.", ["kind"])
PARTICIPATION = Gauge("wangge_study_participation_rate", "Share of targeted members who took part, per campaign and town.", ["campaign", "town"])


def count_dispatches(outcomes):
    """Add a Counter of (kind, outcome), as the workflow returns it, to DISPATCHES."""
    for (kind, outcome), count in outcomes.items():
        DISPATCHES.labels(kind, outcome).inc(count)
