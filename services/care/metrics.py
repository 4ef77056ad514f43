"""Care's business metrics. Counters are per process (sum across replicas); the gauge
is read from the shared store, so every replica reports the same value (take the max).
Labels are stages and outcomes only: never residents or grids."""
from prometheus_client import Counter, Gauge

OVERDUE_NOTICES = Counter("wangge_care_overdue_notices_total", "visit_overdue notices published or called off, by stage.", ["stage", "outcome"])
VISITS = Counter("wangge_care_visits_total", "Home visits recorded (new ones only).")
OVERDUE_RESIDENTS = Gauge("wangge_care_overdue_residents", "Priority residents past their visit's due time, county-wide.")
