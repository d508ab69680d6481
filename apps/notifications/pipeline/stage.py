"""What every stage task shares: its name, queue route, timing and logging."""

import functools
import logging
import time

from celery import shared_task

from ..metrics import stage_seconds

logger = logging.getLogger("apps.notifications.pipeline")


def stage_task(name: str):
    """Register `run(ids) -> ids` as the Celery task `notifications.<name>`."""

    def decorate(run):
        @shared_task(name=f"notifications.{name}", acks_late=True)
        @functools.wraps(run)
        def task(ids):
            started = time.monotonic()
            moving_on = run(ids)
            elapsed = time.monotonic() - started
            stage_seconds.labels(stage=name).observe(elapsed)
            logger.debug("%s: %d in, %d out, %.3fs", name, len(ids), len(moving_on), elapsed)
            return moving_on

        return task

    return decorate
