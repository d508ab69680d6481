"""gunicorn settings: in prometheus_client's multiprocess mode, drop a dead worker's
gauges (`--config python:notifications_project.gunicorn_conf`)."""

import os
import socket


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(f"{socket.gethostname()}-{worker.pid}")
