"""`/metrics` for every process: with PROMETHEUS_MULTIPROC_DIR set (every web and worker
process writes its samples there), the page aggregates all of them; without it, this
process's own registry. Either way plus the collectors that read shared state at scrape
time (circuit breakers, queue depth)."""

import logging
import os

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("apps.common")
_shared_collectors: list = []


def add_shared_collector(collector) -> None:
    """A collector reading shared state (Redis), registered once on the default registry
    and added to the multiprocess one at each scrape."""
    if collector not in _shared_collectors:
        _shared_collectors.append(collector)
        REGISTRY.register(collector)


class QueueDepthCollector:
    """Messages waiting in each Celery queue (Redis broker: the queue's list length)."""

    def collect(self):
        gauge = GaugeMetricFamily(
            "notification_queue_depth", "Messages waiting in each queue.", labels=["queue"]
        )
        url = settings.CELERY_BROKER_URL or ""
        if url.startswith(("redis://", "rediss://")):
            try:
                import redis

                client = redis.Redis.from_url(url, socket_timeout=1.0)
                for queue in settings.CELERY_TASK_QUEUES:
                    gauge.add_metric([queue.name], client.llen(queue.name))
            except Exception:  # a scrape must not fail because the broker is away
                logger.warning("could not read queue depths", exc_info=True)
        yield gauge


def render_metrics() -> HttpResponse:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        for collector in _shared_collectors:
            registry.register(collector)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
