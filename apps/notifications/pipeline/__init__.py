"""The pipeline: a Celery chain of stage tasks, each working on a batch of delivery ids.

A stage is a module in this package with a task that takes a list of delivery ids and
returns the ids that move on. `STAGES` is the one place that orders them; a later stage
(enrich, guard, optimize) is a new module and one entry here.
"""

from celery import chain
from django.conf import settings

from . import dispatch, preprocess, render

STAGES = (preprocess.task, render.task, dispatch.task)


def batches(ids: list[int], size: int):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def start_pipeline(delivery_ids: list[int], stages=STAGES) -> None:
    for batch in batches(sorted(delivery_ids), settings.PIPELINE_BATCH_SIZE):
        first, *rest = stages
        chain(first.s(batch), *(stage.s() for stage in rest)).apply_async()
