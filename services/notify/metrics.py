"""Notify's business metrics (per process; Prometheus sums replicas)."""
from prometheus_client import Counter, Gauge, Histogram

NOTIFICATIONS = Counter(
    "wangge_notify_notifications_total",
    "Notifications by final outcome (sent, failed), channel and kind.",
    ["outcome", "channel", "kind"],
)
ATTEMPTS = Counter("wangge_notify_attempts_total", "Delivery attempts by channel and result.", ["channel", "result"])
LATENCY = Histogram(
    "wangge_notify_delivery_latency_seconds", "From the event to the message accepted by the channel.",
    ["channel"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 36000),
)
HELD = Gauge("wangge_notify_held_notifications", "Messages held for the end of quiet hours.")
CHANNEL_OPEN = Gauge("wangge_notify_channel_open", "1 while a channel's circuit breaker keeps sends off its failing gateway.", ["channel"])
