import os
import socket

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Name each process's metric files by host and pid: containers sharing the folder
    # (compose's metrics volume) can have the same pids. Done before any metric exists.
    from prometheus_client import values

    def process_identifier() -> str:
        return f"{socket.gethostname()}-{os.getpid()}"

    values.ValueClass = values.MultiProcessValue(process_identifier)

# After the metrics set-up above: importing the app creates metrics.
from .celery import app as celery_app

__all__ = ("celery_app",)
