from prometheus_client import Histogram

lateness = Histogram(
    "notification_escalation_timer_lateness_seconds",
    "How long after its due time an escalation level fired.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
)
