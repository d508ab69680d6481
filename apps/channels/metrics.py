"""The circuit breakers' state as a Prometheus gauge, read from Redis at scrape time, so
any process serving /metrics reports every worker's breakers."""

import logging

from prometheus_client.core import GaugeMetricFamily

from apps.common.metrics_export import add_shared_collector

from . import breaker

logger = logging.getLogger("apps.channels")
STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class CircuitStateCollector:
    def collect(self):
        gauge = GaugeMetricFamily(
            "notification_circuit_state",
            "Circuit breaker per tenant and provider: 0 closed, 1 half-open, 2 open.",
            labels=["tenant_id", "provider"],
        )
        try:
            states = breaker.states()
        except Exception:  # a scrape must not fail because Redis is away
            logger.warning("could not read circuit breaker states", exc_info=True)
            states = []
        for state in states:
            gauge.add_metric(
                [str(state["tenant_id"]), state["provider"]], STATE_VALUES.get(state["state"], 0)
            )
        yield gauge


_collector = CircuitStateCollector()


def register() -> None:
    add_shared_collector(_collector)
