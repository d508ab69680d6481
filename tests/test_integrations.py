"""Tenants' own provider credentials: validated, encrypted at rest, never shown back,
overriding the environment's, rotatable, and testable with a real send."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from apps.notifications.pipeline.providers import credentials_for
from apps.tenants.models import ChannelIntegration
from notifications_project.devproviders import FakeTwilio

pytestmark = pytest.mark.django_db
URL = "/api/v1/integrations/"
SID = "AC" + "1" * 32


def sms_integration(api, token="tw-secret-token-123456", **extra):  # noqa: S107
    body = {
        "channel": "sms",
        "name": "Our Twilio",
        "credentials": {"account_sid": SID, "auth_token": token, "from_number": "+15005550006"},
        **extra,
    }
    return api.post(URL, body, format="json")


def test_credentials_are_encrypted_at_rest_and_shown_only_masked(api, tenant):
    response = sms_integration(api)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "credentials" not in body
    assert body["credential_hints"]["auth_token"] == "••••3456"
    assert body["credential_hints"]["account_sid"] == SID
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_credentials FROM tenants_channelintegration")
        [(stored,)] = cursor.fetchall()
    assert "tw-secret-token" not in stored
    listed = api.get(URL).json()["results"]
    assert "tw-secret-token" not in str(listed)
    assert credentials_for(tenant, "sms")["auth_token"] == "tw-secret-token-123456"


def test_integration_overrides_the_environment(api, tenant, settings):
    settings.TWILIO_AUTH_TOKEN = "from-the-environment"
    assert credentials_for(tenant, "sms")["source"] == "sms:env"
    sms_integration(api)
    resolved = credentials_for(tenant, "sms")
    assert resolved["auth_token"] == "tw-secret-token-123456"
    assert resolved["source"].startswith("sms:") and resolved["source"] != "sms:env"
    integration = ChannelIntegration.objects.get()
    api.patch(f"{URL}{integration.public_id}/", {"enabled": False}, format="json")
    assert credentials_for(tenant, "sms")["auth_token"] == "from-the-environment"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"channel": "fax", "credentials": {}}, "channel"),
        ({"channel": "webhook", "credentials": {}}, "channel"),
        ({"channel": "sms", "credentials": {"account_sid": "nope"}}, "credentials.account_sid"),
        ({"channel": "slack", "credentials": {"bot_token": "xoxb-1", "x": 1}}, "credentials.x"),
        (
            {"channel": "push", "credentials": {"service_account": {}}},
            "credentials.service_account",
        ),
        ({"channel": "sms", "credentials": {}, "colour": "red"}, "colour"),
    ],
)
def test_bad_integrations_are_refused_naming_the_field(api, body, path):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert path in response.json()["error"]["details"]
    assert not ChannelIntegration.objects.exists()


def test_a_second_integration_for_a_channel_is_a_conflict(api):
    assert sms_integration(api).status_code == 201
    response = sms_integration(api)
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_send_test_message_goes_through_twilio(api, settings):
    fake = FakeTwilio(account_sid=SID, auth_token="tw-secret-token-123456").start()
    settings.TWILIO_API_BASE = fake.base_url
    try:
        created = sms_integration(api, test_address="+4917612345678").json()
        result = api.post(f"{URL}{created['id']}/test/", {}, format="json").json()
        assert result["ok"] is True and result["provider_message_id"].startswith("SM")
        [request] = fake.received("Messages.json")
        assert b"To=%2B4917612345678" in request["body"]
        fake.fail_next("+4917612345678", (400, 21211, "Invalid 'To' Phone Number"))
        failed = api.post(f"{URL}{created['id']}/test/", {"to": "+4917612345678"}, format="json")
        assert failed.json() == {
            "ok": False,
            "error": "Twilio 400 error 21211: Unable to create record: Invalid 'To' Phone Number",
            "permanent": True,
        }
    finally:
        fake.stop()


def test_rotating_keys_keeps_credentials_readable(api, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [old]
    sms_integration(api)
    before = ChannelIntegration.objects.get().encrypted_credentials
    settings.CREDENTIAL_KEYS = [new, old]
    call_command("rotate_credentials")
    after = ChannelIntegration.objects.get()
    assert after.encrypted_credentials != before
    settings.CREDENTIAL_KEYS = [new]  # the old key can go now
    assert after.credentials()["auth_token"] == "tw-secret-token-123456"
