"""Health, readiness, metrics, schema, settings parsing, commands and admin."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.audit.models import AuditEntry
from apps.channels import breaker
from apps.notifications.models import Delivery
from apps.templating.store import publish
from apps.tenants.models import ApiKey, ChannelIntegration, Tenant
from tests.conftest import accept_one

ROOT = Path(__file__).resolve().parent.parent


def test_healthz_needs_no_key(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()


@pytest.mark.django_db
def test_metrics_expose_our_counters_and_honour_the_token(client, settings, api):
    api.post(
        "/api/v1/notifications/",
        {"content": "x", "recipients": [{"email": "a@b.co"}], "channels": [{"type": "email"}]},
        format="json",
    )
    text = client.get("/metrics").content.decode()
    assert "notification_requests_total" in text
    assert "notification_deliveries_total" in text
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/notifications/bulk/" in schema.content
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be true or false"),
        ("DATABASE_URL", "mysql://x@h/db", "DATABASE_URL must use one of"),
        ("CELERY_BROKER_URL", "kafka://h", "CELERY_BROKER_URL must use one of"),
        ("DELIVERY_MAX_ATTEMPTS", "0", "DELIVERY_MAX_ATTEMPTS must be at least 1"),
        ("WEBHOOK_TIMEOUT_SECONDS", "soon", "WEBHOOK_TIMEOUT_SECONDS must be a number"),
        ("DELIVERY_PRICES", "sms:0.01", "DELIVERY_PRICES must be key=number pairs"),
        ("CHANNEL_MAX_ATTEMPTS", "sms=-1", "CHANNEL_MAX_ATTEMPTS: sms must not be negative"),
    ],
)
def test_bad_setting_stops_start_up_with_a_clear_message(name, value, message):
    result = manage_check({**os.environ, name: value, "SECRET_KEY": "x"})
    assert result.returncode != 0
    assert message in result.stderr


def test_missing_secret_key_outside_debug_stops_start_up():
    result = manage_check({k: v for k, v in os.environ.items() if k != "SECRET_KEY"})
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def manage_check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.django_db
def test_create_tenant_prints_a_working_key_on_the_last_line():
    out = StringIO()
    call_command("create_tenant", "initech", "--name", "Initech", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/tenant/").json()["slug"] == "initech"
    assert ApiKey.objects.get(tenant__slug="initech").key_hash != key


@pytest.mark.django_db
def test_create_tenant_refuses_a_duplicate_slug():
    Tenant.objects.create(slug="initech", name="x")
    with pytest.raises(Exception, match="exists already"):
        call_command("create_tenant", "initech", "--name", "Initech", stdout=StringIO())


@pytest.fixture
def admin_client_logged_in(client, db):
    User.objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.mark.django_db
def test_admin_pages_render_and_retry_action_requeues_failed(
    admin_client_logged_in, tenant, monkeypatch
):
    notification = accept_one(tenant)
    delivery = Delivery.objects.get(notification=notification)
    Delivery.objects.filter(pk=delivery.pk).update(status="failed", error="boom", attempts=5)
    enqueued = []
    monkeypatch.setattr("apps.notifications.admin.enqueue_by_channel", enqueued.extend)
    for url in (
        "/admin/notifications/notification/",
        "/admin/notifications/delivery/",
        f"/admin/notifications/delivery/{delivery.pk}/change/",
        f"/admin/notifications/notification/{notification.pk}/change/",
        "/admin/tenants/tenant/",
        "/admin/tenants/apikey/",
        "/admin/notifications/deliveryattempt/",
    ):
        assert admin_client_logged_in.get(url).status_code == 200, url
    response = admin_client_logged_in.post(
        "/admin/notifications/delivery/",
        {"action": "retry_failed", "_selected_action": [delivery.pk]},
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("queued", 0, "")
    assert enqueued == [delivery.pk]


@pytest.mark.django_db
def test_open_circuit_shows_in_admin_and_metrics(admin_client_logged_in, tenant, settings):
    settings.CIRCUIT_FAILURE_THRESHOLD = 1
    breaker.reset(tenant.pk, "sms:env")
    breaker.record(tenant.pk, "sms:env", successes=0, faults=1)
    try:
        page = admin_client_logged_in.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
        assert "sms:env: open (1 failures in a row)" in page.content.decode()
        metrics = admin_client_logged_in.get("/metrics").content.decode()
        assert f'notification_circuit_state{{provider="sms:env",tenant_id="{tenant.pk}"}} 2.0' in (
            metrics
        )
        admin_client_logged_in.post(
            "/admin/tenants/tenant/",
            {"action": "reset_circuit_breakers", "_selected_action": [tenant.pk]},
        )
        assert breaker.acquire(tenant.pk, "sms:env").allowed
    finally:
        breaker.reset(tenant.pk, "sms:env")


@pytest.mark.django_db
def test_integration_admin_takes_credentials_and_shows_them_masked(admin_client_logged_in, tenant):
    credentials = {"bot_token": "xoxb-secret-value-9876"}
    response = admin_client_logged_in.post(
        "/admin/tenants/channelintegration/add/",
        {
            "tenant": tenant.pk,
            "channel": "slack",
            "name": "ops",
            "enabled": "on",
            "test_address": "#ops",
            "new_credentials": json.dumps(credentials),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    integration = ChannelIntegration.objects.get()
    assert integration.credentials() == credentials
    [entry] = AuditEntry.objects.filter(operation="integration.saved")
    assert entry.actor == "admin:root" and entry.metadata["credentials_changed"] is True
    listing = admin_client_logged_in.get("/admin/tenants/channelintegration/").content.decode()
    change = admin_client_logged_in.get(
        f"/admin/tenants/channelintegration/{integration.pk}/change/"
    ).content.decode()
    assert "••••9876" in listing
    assert "xoxb-secret-value" not in listing + change
    refused = admin_client_logged_in.post(
        "/admin/tenants/channelintegration/add/",
        {"tenant": tenant.pk, "channel": "sms", "new_credentials": '{"account_sid": "x"}'},
    )
    assert refused.status_code == 200 and "Invalid credentials" in refused.content.decode()


@pytest.mark.django_db
def test_template_admin_previews_each_variant_with_sample_context(admin_client_logged_in, tenant):
    variants = [
        {
            "channel": None,
            "locale": "de",
            "subject": "Hallo {{ recipient.first_name }}",
            "body": "{{ 12840|number_format }}",
        },
        {"channel": "sms", "locale": "en", "subject": "", "body": "Hi {{ recipient.first_name }}"},
    ]
    template, _ = publish(tenant, "welcome", variants)
    page = admin_client_logged_in.get(
        f"/admin/templating/notificationtemplate/{template.pk}/change/"
    )
    text = page.content.decode()
    assert page.status_code == 200
    assert "Hallo Maria" in text and "12.840" in text and "Hi Maria" in text
    assert admin_client_logged_in.get("/admin/templating/notificationtemplate/").status_code == 200
