"""Accepting, listing, reading and cancelling notifications through the API."""

import pytest

from apps.notifications.models import Delivery, Notification

pytestmark = pytest.mark.django_db
URL = "/api/v1/notifications/"


def body(**overrides):
    data = {
        "title": "Hi",
        "content": "Hello {{ recipient.first_name }}",
        "recipients": [
            {"user_id": "u1", "email": "a@example.com"},
            {"user_id": "u2", "email": "b@example.com"},
        ],
        "channels": [
            {"type": "email"},
            {"type": "webhook", "config": {"url": "https://hooks.example.com/x"}},
        ],
    }
    data.update(overrides)
    return data


def test_accept_creates_one_delivery_per_recipient_and_channel(api):
    response = api.post(URL, body(), format="json")
    assert response.status_code == 202
    data = response.json()
    assert data["status"] == "accepted" and data["deliveries"] == 4
    notification = Notification.objects.get(public_id=data["id"])
    pairs = sorted(notification.deliveries.values_list("recipient_id", "channel"))
    assert pairs == [("u1", "email"), ("u1", "webhook"), ("u2", "email"), ("u2", "webhook")]
    assert set(notification.deliveries.values_list("status", flat=True)) == {"pending"}


def test_fallback_channels_are_not_counted_or_created(api):
    channels = [
        {"type": "webhook", "config": {"url": "https://hooks.example.com/x"}},
        {"type": "email", "config": {"fallback": True}},
    ]
    response = api.post(URL, body(channels=channels, recipients=[{"user_id": "u1"}]), format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["deliveries"] == 1


def test_same_idempotency_key_and_body_answers_the_first_response(api):
    first = api.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    again = api.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert Notification.objects.count() == 1


def test_same_idempotency_key_with_other_body_is_a_409(api):
    api.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    response = api.post(URL, body(title="Other"), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Notification.objects.count() == 1


def test_idempotency_keys_are_scoped_to_the_tenant(api, other_api):
    api.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = other_api.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 202
    assert Notification.objects.count() == 2


def test_bulk_answers_ids_in_request_order(api):
    items = [body(title=f"n{i}") for i in range(5)]
    response = api.post(URL + "bulk/", {"notifications": items}, format="json")
    assert response.status_code == 202
    ids = response.json()["ids"]
    titles = [Notification.objects.get(public_id=i).title for i in ids]
    assert titles == [f"n{i}" for i in range(5)]
    assert Delivery.objects.count() == 20


def test_detail_shows_deliveries_in_the_contract_shape(api):
    created = api.post(URL, body(), format="json").json()
    detail = api.get(f"{URL}{created['id']}/").json()
    assert detail["id"] == created["id"] and detail["escalation"] is None
    assert detail["status"] == "accepted"
    assert "insights" in detail
    delivery = detail["deliveries"][0]
    assert set(delivery) == {
        "id",
        "recipient",
        "channel",
        "status",
        "attempts",
        "provider_message_id",
        "sent_at",
        "delivered_at",
        "opened_at",
        "clicked_at",
        "error",
        "fallback_for",
        "cost",
    }


def test_list_is_cursor_paginated_newest_first_and_filterable(api):
    ids = [api.post(URL, body(title=f"n{i}"), format="json").json()["id"] for i in range(3)]
    page = api.get(URL, {"page_size": 2}).json()
    assert set(page) == {"next", "previous", "results"}
    assert [r["id"] for r in page["results"]] == [ids[2], ids[1]]
    rest = api.get(page["next"]).json()
    assert [r["id"] for r in rest["results"]] == [ids[0]]
    assert api.get(URL, {"status": "completed"}).json()["results"] == []
    api.post(URL, body(channels=[{"type": "email"}]), format="json")
    assert len(api.get(URL, {"channel": "webhook"}).json()["results"]) == 3
    assert len(api.get(URL, {"channel": "email"}).json()["results"]) == 4
    assert api.get(URL, {"created_after": "2999-01-01T00:00:00Z"}).json()["results"] == []


def test_cancel_stops_what_was_not_sent(api):
    created = api.post(URL, body(), format="json").json()
    notification = Notification.objects.get(public_id=created["id"])
    notification.deliveries.filter(channel="email", recipient_id="u1").update(status="sent")
    response = api.post(f"{URL}{created['id']}/cancel/")
    assert response.status_code == 200
    statuses = sorted(d["status"] for d in response.json()["deliveries"])
    assert statuses == ["cancelled", "cancelled", "cancelled", "sent"]
    assert response.json()["status"] == "completed"


def test_cancel_everything_marks_the_notification_cancelled(api):
    created = api.post(URL, body(), format="json").json()
    response = api.post(f"{URL}{created['id']}/cancel/")
    assert response.json()["status"] == "cancelled"


def test_scheduled_notification_waits_for_its_time(api):
    created = api.post(URL, body(send_at="2999-01-01T00:00:00Z"), format="json").json()
    assert Notification.objects.get(public_id=created["id"]).status == "scheduled"
