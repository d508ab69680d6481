"""Escalations with a real worker: levels fire after their delays exactly once, stop on
acknowledge/resolve, survive a killed worker (auditor), and move on at failed receipts."""

import hashlib
import hmac
import json
import time
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.escalation import services
from apps.escalation.hooks import action_urls
from apps.escalation.models import Escalation, EscalationPolicy, TimelineEntry
from apps.escalation.tasks import fire_level
from apps.notifications.models import Delivery
from notifications_project.celery import app as celery_app
from notifications_project.devproviders import FakeTwilio
from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NOTIFY = "/api/v1/notifications/"
CONTACTS = [
    {
        "user_id": "dev-1",
        "role": "developer",
        "email": "dev1@example.com",
        "phone": "+4917612345678",
    },
    {"user_id": "mgr-1", "role": "manager", "email": "mgr1@example.com"},
    {"user_id": "cto", "role": "cto", "email": "cto@example.com"},
]


@pytest.fixture(autouse=True)
def _no_level_outlives_its_test():
    """Revoke the countdown tasks a test leaves behind: the module's worker would fire
    them while the next test's teardown empties the database."""
    yield
    tokens = [
        str(t)
        for t in Escalation.objects.exclude(active_token=None).values_list(
            "active_token", flat=True
        )
    ]
    if tokens:
        celery_app.control.revoke(tokens)
        Escalation.objects.update(active_token=None, next_due_at=None, next_level=None)
    # And let the deliveries a level started settle before the database is emptied.
    Delivery.objects.filter(status__in=("pending", "queued")).update(status="cancelled")
    wait_until(lambda: not Delivery.objects.filter(status="sending").exists(), timeout=20)
    time.sleep(0.3)


def policy(
    api,
    name="payments",
    second_delay=2,
    second_condition="no_acknowledgment",
    first_delay=0,
    **extra,
):
    for contact in CONTACTS:
        api.post("/api/v1/contacts/", contact, format="json")
    body = {
        "name": name,
        "levels": [
            {"delay_seconds": first_delay, "target_roles": ["developer"], "channels": ["email"]},
            {
                "delay_seconds": second_delay,
                "target_roles": ["manager"],
                "channels": ["email"],
                "condition": second_condition,
            },
        ],
        **extra,
    }
    response = api.post("/api/v1/escalation-policies/", body, format="json")
    assert response.status_code == 201, response.json()
    return body


def trigger(api, name="payments", recipients=()):
    body = {
        "title": "Payments down",
        "content": "Error rate {{ rate }}",
        "priority": "critical",
        "recipients": list(recipients),
        "channels": [{"type": "email"}],
        "metadata": {"rate": "12%"},
        "escalation": {"policy": name},
    }
    response = api.post(NOTIFY, body, format="json")
    assert response.status_code == 202, response.json()
    escalation_id = api.get(f"{NOTIFY}{response.json()['id']}/").json()["escalation"]
    return Escalation.objects.get(public_id=escalation_id)


def mail_to(smtp_sink, address):
    return [m for m in smtp_sink.messages if address in m["to"]]


def fired_levels(escalation):
    return list(
        TimelineEntry.objects.filter(escalation=escalation, kind="level_fired")
        .order_by("id")
        .values_list("level", flat=True)
    )


def test_level_two_fires_after_its_delay_when_nobody_acknowledges(celery_worker, api, smtp_sink):
    policy(api)
    started = time.monotonic()
    escalation = trigger(api)
    wait_until(lambda: mail_to(smtp_sink, "dev1@example.com"), timeout=15)
    [first] = mail_to(smtp_sink, "dev1@example.com")
    body = first["message"].get_body(("plain",)).get_content()
    assert "Error rate 12%" in body and "Acknowledge: http" in body
    wait_until(lambda: mail_to(smtp_sink, "mgr1@example.com"), timeout=15)
    assert time.monotonic() - started >= 2.0  # not before its delay
    escalation.refresh_from_db()
    assert fired_levels(escalation) == [1, 2]
    detail = api.get(f"/api/v1/escalations/{escalation.public_id}/").json()
    assert (detail["state"], detail["level"]) == ("triggered", 2)
    assert [e["kind"] for e in detail["timeline"]] == ["triggered", "level_fired", "level_fired"]
    assert detail["timeline"][2]["detail"]["contacts"] == ["mgr-1"]


def test_acknowledging_after_level_one_stops_level_two(celery_worker, api, smtp_sink):
    policy(api)
    escalation = trigger(api)
    wait_until(lambda: mail_to(smtp_sink, "dev1@example.com"), timeout=15)
    response = api.post(
        f"/api/v1/escalations/{escalation.public_id}/acknowledge/", {"by": "dev-1"}, format="json"
    )
    assert response.status_code == 200 and response.json()["state"] == "acknowledged"
    assert response.json()["acknowledged_by"] == "dev-1"
    wait_until(
        lambda: TimelineEntry.objects.filter(escalation=escalation, kind="level_skipped").exists(),
        timeout=15,
    )
    assert not mail_to(smtp_sink, "mgr1@example.com")
    again = api.post(f"/api/v1/escalations/{escalation.public_id}/acknowledge/", {}, format="json")
    assert again.status_code == 409


def test_resolving_stops_no_resolution_levels(celery_worker, api, smtp_sink):
    policy(api, second_condition="no_resolution")
    escalation = trigger(api)
    wait_until(lambda: mail_to(smtp_sink, "dev1@example.com"), timeout=15)
    api.post(f"/api/v1/escalations/{escalation.public_id}/acknowledge/", {}, format="json")
    resolved = api.post(
        f"/api/v1/escalations/{escalation.public_id}/resolve/", {"by": "mgr-1"}, format="json"
    )
    assert resolved.json()["state"] == "resolved"
    time.sleep(2.5)
    escalation.refresh_from_db()
    assert escalation.next_due_at is None and fired_levels(escalation) == [1]
    assert not mail_to(smtp_sink, "mgr1@example.com")


def test_a_policy_edit_after_trigger_does_not_change_the_running_escalation(
    celery_worker, api, smtp_sink
):
    body = policy(api)
    escalation = trigger(api)
    body["levels"][1]["target_roles"] = ["cto"]
    assert api.put("/api/v1/escalation-policies/payments/", body, format="json").status_code == 200
    wait_until(lambda: mail_to(smtp_sink, "mgr1@example.com"), timeout=15)
    assert not mail_to(smtp_sink, "cto@example.com")
    assert EscalationPolicy.objects.get().levels[1]["target_roles"] == ["cto"]
    escalation.refresh_from_db()
    assert escalation.snapshot["levels"][1]["target_roles"] == ["manager"]


def test_the_same_level_task_delivered_twice_notifies_once(api, smtp_sink):
    policy(api, first_delay=3600, second_delay=3600)
    escalation = trigger(api)  # its task is an hour away: run it by hand now
    token = str(escalation.active_token)
    assert fire_level.apply(args=[escalation.id, 0, token]).get() == "fired"
    assert fire_level.apply(args=[escalation.id, 0, token]).get() == "stale"
    assert services.fire(escalation.id, 1, token) == "stale"  # an old token never fires
    assert fired_levels(escalation) == [1]
    assert Delivery.objects.filter(notification=escalation.notification).count() == 1


def test_recipient_who_is_also_a_contact_is_notified_once_per_channel(api):
    policy(api, first_delay=3600, second_delay=3600)
    escalation = trigger(api, recipients=[{"user_id": "dev-1", "email": "dev1@example.com"}])
    services.fire(escalation.id, 0, str(escalation.active_token))
    deliveries = Delivery.objects.filter(notification=escalation.notification)
    assert list(deliveries.values_list("recipient_id", "channel")) == [("dev-1", "email")]


def test_every_failed_receipt_escalates_at_once(celery_worker, api, settings, smtp_sink):
    twilio = FakeTwilio().start()
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = twilio.account_sid, twilio.auth_token
    settings.TWILIO_FROM_NUMBER, settings.TWILIO_API_BASE = "+15005550006", twilio.base_url
    try:
        twilio.fail_next("+4917612345678", (400, 21211, "Invalid 'To' Phone Number"))
        for contact in CONTACTS:
            api.post("/api/v1/contacts/", contact, format="json")
        levels = [
            {"delay_seconds": 0, "target_roles": ["developer"], "channels": ["sms"]},
            {"delay_minutes": 30, "target_roles": ["manager"], "channels": ["email"]},
        ]
        api.post(
            "/api/v1/escalation-policies/", {"name": "sms-first", "levels": levels}, format="json"
        )
        escalation = trigger(api, name="sms-first")
        wait_until(
            lambda: Delivery.objects.filter(
                notification=escalation.notification, status="failed"
            ).exists(),
            timeout=40,
        )
        assert services.audit()["escalated_on_receipts"] == 1
        wait_until(lambda: mail_to(smtp_sink, "mgr1@example.com"), timeout=15)
        kinds = list(
            TimelineEntry.objects.filter(escalation=escalation).values_list("kind", flat=True)
        )
        assert kinds == ["triggered", "level_fired", "receipts_failed", "level_fired"]
    finally:
        twilio.stop()


def test_one_click_links_work_and_tampered_ones_are_refused(api):
    policy(api, first_delay=3600, second_delay=3600)
    escalation = trigger(api)
    services.fire(escalation.id, 0, str(escalation.active_token))
    urls = action_urls(escalation, "dev-1")
    code = urls["acknowledge_code"]
    browser = APIClient()
    assert browser.get(f"/e/{code}/").status_code == 200
    escalation.refresh_from_db()
    assert escalation.state == "triggered"  # looking is not acknowledging
    assert browser.post(f"/e/{code[:-2]}xx/").status_code == 404
    assert browser.post(f"/e/{code}/").status_code == 200
    escalation.refresh_from_db()
    assert (escalation.state, escalation.acknowledged_by) == ("acknowledged", "dev-1")


def slack_post(body: bytes, secret: str, timestamp: str | None = None):
    timestamp = timestamp or str(int(time.time()))
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return APIClient().post(
        "/api/v1/callbacks/slack/interactive/",
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_SIGNATURE=signature,
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
    )


def test_slack_button_acknowledges_and_forged_callbacks_are_refused(api, settings):
    settings.SLACK_SIGNING_SECRET = "slack-signing-secret"
    policy(api, first_delay=3600, second_delay=3600)
    escalation = trigger(api)
    code = action_urls(escalation, "dev-1")["acknowledge_code"]
    payload = {
        "user": {"id": "U0DEV1"},
        "actions": [{"action_id": "escalation_acknowledge", "value": code}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert slack_post(body, "not-the-secret").status_code == 403
    assert (
        slack_post(body, settings.SLACK_SIGNING_SECRET, str(int(time.time()) - 600)).status_code
        == 403
    )
    escalation.refresh_from_db()
    assert escalation.state == "triggered"
    response = slack_post(body, settings.SLACK_SIGNING_SECRET)
    assert response.status_code == 200
    escalation.refresh_from_db()
    assert (escalation.state, escalation.acknowledged_by) == ("acknowledged", "slack:U0DEV1")


def test_simulate_escalation_prints_the_plan_without_sending(api, tenant):
    policy(api, second_delay=300, repeat_last=1)
    out = StringIO()
    call_command("simulate_escalation", "payments", "--tenant", tenant.slug, stdout=out)
    assert out.getvalue().splitlines() == [
        "t+      0s  level 1: dev-1 via email",
        "t+    300s  level 2: mgr-1 via email",
        "t+    600s  level 3: mgr-1 via email",
        "no more levels",
    ]
    out = StringIO()
    call_command(
        "simulate_escalation", "payments", "--tenant", tenant.slug, "--ack-at", "100", stdout=out
    )
    assert "level 2: skipped (no_acknowledgment; acknowledged)" in out.getvalue()
    assert not Delivery.objects.exists() and not Escalation.objects.exists()


@pytest.mark.parametrize(
    ("escalation", "path"),
    [
        ({"policy": "nope"}, "escalation"),
        ({"levels": []}, "escalation"),
        (
            {"levels": [{"target_roles": ["x"], "channels": ["fax"]}]},
            "escalation.levels.0.channels.0",
        ),
        ({"levels": [{"channels": ["email"]}]}, "escalation.levels.0.target_roles"),
        ({"policy": "a", "levels": [{"target_roles": ["x"], "channels": ["email"]}]}, "escalation"),
    ],
)
def test_bad_escalations_are_refused(api, escalation, path):
    body = {
        "content": "x",
        "recipients": [],
        "channels": [{"type": "email"}],
        "escalation": escalation,
    }
    response = api.post(NOTIFY, body, format="json")
    assert response.status_code == 400
    assert path in response.json()["error"]["details"], response.json()
    assert not Escalation.objects.exists()
