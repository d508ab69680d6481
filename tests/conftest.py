import time

import pytest
import redis
from celery.contrib.testing import tasks as _celery_test_tasks  # noqa: F401 - ping task
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIClient

from apps.notifications import services
from apps.tenants.services import create_tenant
from notifications_project.celery import app as celery_app
from notifications_project.devsinks import SmtpSink, WebhookReceiver


@pytest.fixture(scope="session", autouse=True)
def _clean_broker():
    """Other processes may share this Redis: start from an empty database of our own."""
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    yield


@pytest.fixture
def tenant_with_key(db):
    return create_tenant("acme", "Acme Inc.")


@pytest.fixture
def tenant(tenant_with_key):
    return tenant_with_key[0]


@pytest.fixture
def api(tenant_with_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant_with_key[1]}")
    return client


@pytest.fixture
def other_api(db):
    _tenant, key = create_tenant("globex", "Globex Corp.")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def smtp_sink(settings):
    sink = SmtpSink().start()
    settings.EMAIL_URL = sink.url
    yield sink
    sink.stop()


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker consuming every queue from the real Redis broker."""
    celery_app.conf.task_always_eager = False
    worker = start_worker(
        celery_app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=20
    )
    with django_db_blocker.unblock(), worker as running:
        yield running
    with django_db_blocker.unblock():
        _drop_other_sessions()


def _drop_other_sessions():
    """The worker's pool threads keep their own connections; end them so the test
    database can be dropped at the end of the session."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def fast_retries(settings):
    settings.RETRY_BACKOFF_SECONDS = 0.2
    settings.RETRY_BACKOFF_MAX_SECONDS = 1.0


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def accept_one(tenant, channels=None, recipients=None):
    """Accept one notification through the service layer, as the API does after
    validation; returns the Notification."""
    [(notification, _count)] = services.accept(
        tenant,
        [
            {
                "priority": "normal",
                "title": "t",
                "content": "c",
                "metadata": {},
                "recipients": recipients or [{"user_id": "u1", "email": "a@example.com"}],
                "channels": channels or [{"type": "email", "config": {}}],
            }
        ],
    )
    return notification
