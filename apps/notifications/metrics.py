from prometheus_client import Counter, Histogram

requests_total = Counter("notification_requests_total", "Notifications accepted through the API.")
deliveries_total = Counter(
    "notification_deliveries_total",
    "Deliveries that reached a status, by channel and status.",
    ["channel", "status"],
)
delivery_seconds = Histogram(
    "notification_delivery_seconds",
    "Time one provider call took, by channel.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
stage_seconds = Histogram(
    "notification_pipeline_stage_seconds",
    "Time one pipeline stage took for one batch.",
    ["stage"],
)
rate_limit_waits = Counter(
    "notification_rate_limit_waits_total",
    "Deliveries held back by a rate limit, by channel.",
    ["channel"],
)
circuit_waits = Counter(
    "notification_circuit_open_waits_total",
    "Deliveries held back because their provider's circuit was open, by channel.",
    ["channel"],
)
