import pytest

from apps.notifications.models import Delivery, Notification
from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_webhook_and_email_delivered_end_to_end(celery_worker, api, smtp_sink, receiver):
    response = api.post(
        "/api/v1/notifications/",
        {
            "title": "Hello {{ recipient.first_name }}",
            "content": "Order {{ order_id }} shipped",
            "recipients": [
                {"user_id": "u1", "email": "a@example.com", "metadata": {"first_name": "Maria"}}
            ],
            "channels": [{"type": "email"}, {"type": "webhook", "config": {"url": receiver.url()}}],
            "metadata": {"order_id": "A-17"},
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    smtp_sink.wait_for(1)
    receiver.wait_for(1)
    notification = Notification.objects.get(public_id=response.json()["id"])
    wait_until(lambda: Notification.objects.get(pk=notification.pk).status == "completed")
    deliveries = Delivery.objects.filter(notification=notification)
    statuses = dict(deliveries.values_list("channel", "status"))
    assert statuses == {"email": "sent", "webhook": "delivered"}
