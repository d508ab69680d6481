import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_project.settings")

app = Celery("notifications_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes the DB connection around every task unless this is set
# (it reads the key verbatim, so the CELERY_ namespace cannot provide it).
app.conf.CELERY_DB_REUSE_MAX = 1000
app.autodiscover_tasks()
