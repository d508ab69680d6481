import os
import socket

from celery import Celery
from celery.signals import worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_project.settings")

app = Celery("notifications_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes the DB connection around every task unless this is set
# (it reads the key verbatim, so the CELERY_ namespace cannot provide it).
app.conf.CELERY_DB_REUSE_MAX = 1000
app.autodiscover_tasks()


@worker_process_shutdown.connect
def _forget_dead_process_metrics(pid=None, **kwargs):
    """In prometheus_client's multiprocess mode a dead process's gauges must be dropped."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(f"{socket.gethostname()}-{pid or os.getpid()}")
