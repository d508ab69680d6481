"""Every bad input answers a 4xx with the contract's error shape and writes nothing."""

import json

import pytest

from apps.notifications.models import Delivery, IdempotencyRecord, Notification

URL = "/api/v1/notifications/"


def valid(**overrides):
    body = {
        "title": "Hi {{ recipient.first_name }}",
        "content": "Hello",
        "recipients": [{"user_id": "u1", "email": "a@example.com"}],
        "channels": [{"type": "email"}],
    }
    body.update(overrides)
    return body


def assert_error(response, status, field=None, code=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["details"], dict)
    if field is not None:
        assert field in error["details"], error
    if code is not None:
        assert error["code"] == code
    assert Notification.objects.count() == 0
    assert Delivery.objects.count() == 0
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (valid(channels=[{"type": "pigeon"}]), "channels.0.type"),
        (valid(recipients=[]), "recipients"),
        (valid(recipients=[{"user_id": "u1"}]), "recipients.0.email"),
        (valid(recipients=[{"email": "not-an-address"}]), "recipients.0.email"),
        (valid(recipients=[{"email": "a@example.com", "phone": "+491"}]), "recipients.0.phone"),
        (
            valid(recipients=[{"email": "a@example.com", "phone": "004917612345678"}]),
            "recipients.0.phone",
        ),
        (
            valid(recipients=[{"email": "a@example.com", "timezone": "Mars/Olympus"}]),
            "recipients.0.timezone",
        ),
        (valid(content="{% if %}"), "content"),
        (valid(title="{{ unclosed"), "title"),
        (valid(colour="red"), "colour"),
        (valid(recipients=[{"email": "a@example.com", "nick": "x"}]), "recipients.0.nick"),
        (
            valid(channels=[{"type": "email", "config": {"form_email": "x@y.z"}}]),
            "channels.0.config.form_email",
        ),
        (valid(channels=[{"type": "webhook", "config": {}}]), "channels.0.config.url"),
        (
            valid(channels=[{"type": "webhook", "config": {"url": "ftp://x/"}}]),
            "channels.0.config.url",
        ),
        (
            valid(
                channels=[
                    {
                        "type": "webhook",
                        "config": {
                            "url": "https://example.com/h",
                            "headers": {"Authorization": "x"},
                        },
                    }
                ]
            ),
            "channels.0.config.headers",
        ),
        (valid(channels=[]), "channels"),
        (valid(priority="urgent"), "priority"),
        (valid(template="welcome", title="", content=""), "template"),
        (valid(escalation={"policy": "payments-oncall"}), "escalation"),
        (valid(title="", content=""), "content"),
        (valid(channels=[{"type": "email", "config": {"fallback": True}}]), "channels"),
        (valid(send_at="tomorrow"), "send_at"),
        (valid(locale="not a locale"), "locale"),
    ],
)
def test_bad_notification_is_refused_with_the_field_named(api, body, field):
    error = assert_error(api.post(URL, body, format="json"), 400, field, "validation_error")
    assert field in error["message"] or error["message"].startswith("Invalid input")


def test_malformed_json_is_a_400_parse_error(api):
    response = api.generic("POST", URL, b'{"content": ', content_type="application/json")
    assert_error(response, 400, code="validation_error")
    assert "JSON parse error" in response.json()["error"]["message"]


def test_non_json_body_is_a_415(api):
    response = api.generic(
        "POST", URL, b"content=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, code="unsupported_media_type")


def test_body_over_one_mebibyte_is_a_413(api):
    body = json.dumps(valid(content="x" * (1024 * 1024 + 10))).encode()
    response = api.generic("POST", URL, body, content_type="application/json")
    assert_error(response, 413, code="payload_too_large")


def test_bulk_over_a_thousand_items_is_refused(api):
    response = api.post(URL + "bulk/", {"notifications": [valid()] * 1001}, format="json")
    assert_error(response, 400, "notifications")


def test_bulk_names_the_bad_item_by_index_and_creates_nothing(api):
    items = [valid(), valid(), valid(), valid(recipients=[])]
    response = api.post(URL + "bulk/", {"notifications": items}, format="json")
    assert_error(response, 400, "notifications.3.recipients")


def test_bulk_with_empty_list_is_refused(api):
    assert_error(
        api.post(URL + "bulk/", {"notifications": []}, format="json"), 400, "notifications"
    )


def test_json_that_is_not_an_object_is_refused(api):
    assert_error(api.post(URL, [1, 2], format="json"), 400)


def test_idempotency_key_too_long_is_refused(api):
    response = api.post(URL, valid(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert_error(response, 400, "Idempotency-Key")
    assert IdempotencyRecord.objects.count() == 0


def test_bad_list_filter_is_a_400(api):
    response = api.get(URL, {"status": "nonsense"})
    assert response.status_code == 400
    assert "status" in response.json()["error"]["details"]


def test_unknown_api_route_is_a_json_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
