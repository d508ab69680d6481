"""End to end through a real Celery worker, real PostgreSQL and Redis, a real SMTP server
and a real HTTP receiver."""

import hashlib
import hmac
import json

import pytest

from apps.notifications.models import Delivery, DeliveryAttempt, Notification
from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/notifications/"


def notify(api, channels, recipients=None, **extra):
    body = {
        "title": "Order {{ order_id }}",
        "content": "Hi {{ recipient.first_name }}",
        "recipients": recipients
        or [{"user_id": "u1", "email": "maria@example.com", "metadata": {"first_name": "Maria"}}],
        "channels": channels,
        "metadata": {"order_id": "A-17"},
        **extra,
    }
    response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def finished(notification_id):
    def check():
        notification = Notification.objects.get(public_id=notification_id)
        if notification.status in ("completed", "failed", "partially_failed", "cancelled"):
            return notification
        return None

    return wait_until(check, timeout=30)


def test_email_arrives_with_stable_identity_and_config(celery_worker, api, smtp_sink):
    config = {
        "from_name": "Acme Shop",
        "from_email": "shop@acme.test",
        "reply_to": "help@acme.test",
    }
    notification = finished(notify(api, [{"type": "email", "config": config}]))
    [item] = smtp_sink.wait_for(1)
    message = item["message"]
    delivery = Delivery.objects.get(notification=notification)
    assert item["to"] == ["maria@example.com"]
    assert message["Subject"] == "Order A-17"
    assert message["From"] == "Acme Shop <shop@acme.test>"
    assert message["Reply-To"] == "help@acme.test"
    assert message["Message-ID"] == delivery.provider_message_id
    assert message["X-Notify-Delivery-Id"] == str(delivery.public_id)
    assert message.get_body(("plain",)).get_content().strip() == "Hi Maria"
    assert "Hi Maria" in message.get_body(("html",)).get_content()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_webhook_arrives_signed_with_the_tenant_secret(celery_worker, api, tenant, receiver):
    notification = finished(
        notify(
            api,
            [
                {
                    "type": "webhook",
                    "config": {"url": receiver.url(), "headers": {"X-Team": "payments"}},
                }
            ],
        )
    )
    [request] = receiver.wait_for(1)
    headers, raw = request["headers"], request["body"]
    signed = headers["X-Notify-Timestamp"].encode() + b"." + raw
    expected = hmac.new(tenant.webhook_signing_secret.encode(), signed, hashlib.sha256)
    assert headers["X-Notify-Signature"] == "v1=" + expected.hexdigest()
    assert headers["X-Team"] == "payments"
    delivery = Delivery.objects.get(notification=notification)
    assert headers["X-Notify-Delivery-Id"] == str(delivery.public_id)
    payload = json.loads(raw)
    assert payload["title"] == "Order A-17" and payload["content"] == "Hi Maria"
    assert delivery.status == "delivered" and delivery.delivered_at is not None


def test_receiver_failing_twice_is_retried_until_delivered(
    celery_worker, api, receiver, fast_retries
):
    receiver.script("/flaky", 500, 503, 200)
    notification = finished(
        notify(api, [{"type": "webhook", "config": {"url": receiver.url("/flaky")}}])
    )
    delivery = Delivery.objects.get(notification=notification)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    outcomes = list(
        DeliveryAttempt.objects.filter(delivery=delivery).values_list(
            "number", "outcome", "response_code"
        )
    )
    assert outcomes == [
        (1, "transient_error", 500),
        (2, "transient_error", 503),
        (3, "success", 200),
    ]
    assert len({r["headers"]["X-Notify-Delivery-Id"] for r in receiver.requests}) == 1


def test_client_error_fails_at_once_without_retry(celery_worker, api, receiver, fast_retries):
    receiver.script("/gone", 410)
    notification = finished(
        notify(api, [{"type": "webhook", "config": {"url": receiver.url("/gone")}}])
    )
    delivery = Delivery.objects.get(notification=notification)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "HTTP 410" in delivery.error
    assert notification.status == "failed"
    assert len(receiver.requests) == 1


def test_retries_are_bounded(celery_worker, api, receiver, fast_retries, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    receiver.script("/down", 500, 500, 500)
    notification = finished(
        notify(api, [{"type": "webhook", "config": {"url": receiver.url("/down")}}])
    )
    delivery = Delivery.objects.get(notification=notification)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.error.startswith("gave up after 2 attempts")


def test_smtp_permanent_rejection_fails_and_temporary_one_retries(
    celery_worker, api, smtp_sink, fast_retries
):
    smtp_sink.reject_next("nobody@example.com", "550 5.1.1 no such user")
    smtp_sink.reject_next("busy@example.com", "451 4.3.0 try again later")
    recipients = [
        {"user_id": "gone", "email": "nobody@example.com"},
        {"user_id": "busy", "email": "busy@example.com"},
    ]
    notification = finished(notify(api, [{"type": "email"}], recipients=recipients))
    deliveries = {d.recipient_id: d for d in Delivery.objects.filter(notification=notification)}
    assert (deliveries["gone"].status, deliveries["gone"].attempts) == ("failed", 1)
    assert "550" in deliveries["gone"].error
    assert (deliveries["busy"].status, deliveries["busy"].attempts) == ("sent", 2)
    assert notification.status == "partially_failed"


def test_blocked_private_destination_fails_permanently(celery_worker, api, settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    notification = finished(
        notify(api, [{"type": "webhook", "config": {"url": "http://127.0.0.2:9/hook"}}])
    )
    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == "failed" and "private" in delivery.error


def test_identical_message_within_window_is_suppressed(celery_worker, api, receiver):
    channels = [{"type": "webhook", "config": {"url": receiver.url()}}]
    first = finished(notify(api, channels))
    second = finished(notify(api, channels))
    assert Delivery.objects.get(notification=first).status == "delivered"
    duplicate = Delivery.objects.get(notification=second)
    assert duplicate.status == "suppressed" and "duplicate" in duplicate.error
    assert len(receiver.requests) == 1
