"""insert_rows: COPY on PostgreSQL, bulk_create elsewhere, the same rows either way."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.common.copy import insert_rows
from apps.notifications.models import Delivery, DeliveryAttempt
from tests.conftest import accept_one

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_rows_arrive_with_their_values(tenant, vendor, monkeypatch):
    if vendor == "other":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    notification = accept_one(tenant)
    delivery = Delivery.objects.get(notification=notification)
    started = timezone.now() - timedelta(seconds=1)

    def attempt(number, duration_ms, outcome, response_code, error):
        return {
            "delivery_id": delivery.id,
            "number": number,
            "started_at": started,
            "duration_ms": duration_ms,
            "outcome": outcome,
            "response_code": response_code,
            "error": error,
        }

    insert_rows(
        DeliveryAttempt,
        [
            attempt(1, 12, "transient_error", None, "tab\there, newline\nthere"),
            attempt(2, 7, "success", 250, ""),
        ],
    )
    rows = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number").values())
    assert [(r["number"], r["outcome"], r["response_code"], r["error"]) for r in rows] == [
        (1, "transient_error", None, "tab\there, newline\nthere"),
        (2, "success", 250, ""),
    ]
    assert rows[0]["started_at"] == started


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_json_columns_are_stored_as_json(tenant, vendor, monkeypatch):
    if vendor == "other":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    metadata = {"channel": "email", "nested": {"quote": 'say "hi"'}, "list": [1, None]}
    entry = {
        "tenant_id": tenant.id,
        "seq": 10_000,
        "created_at": timezone.now(),
        "actor": "t",
        "operation": "op",
        "resource_type": "thing",
        "metadata": metadata,
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
    }
    insert_rows(AuditEntry, [entry])
    assert AuditEntry.objects.get(tenant=tenant, seq=10_000).metadata == metadata


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_create_all_gives_ids_defaults_and_relations(tenant, vendor, monkeypatch):
    from apps.common.copy import create_all
    from apps.notifications.models import Notification

    if vendor == "other":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    recipients = [{"user_id": "u", "email": "u@example.com", "data": {"k": [1, 2]}}]
    notifications = create_all(
        Notification,
        [
            Notification(tenant=tenant, priority="high", recipients=recipients, channels=[])
            for _ in range(3)
        ],
    )
    assert len({n.pk for n in notifications}) == 3 and all(n.pk for n in notifications)
    deliveries = create_all(
        Delivery,
        [
            Delivery(tenant=tenant, notification=n, recipient_index=0, channel="email")
            for n in notifications
        ],
    )
    stored = Notification.objects.get(pk=notifications[1].pk)
    assert stored.public_id == notifications[1].public_id
    assert stored.recipients == recipients and stored.metadata == {}
    assert stored.created_at is not None and stored.status == "accepted"
    assert Delivery.objects.get(pk=deliveries[1].pk).notification_id == notifications[1].pk
    assert not deliveries[0]._state.adding
    # The sequence moved past the ids taken, so ordinary inserts do not collide.
    later = Notification.objects.create(tenant=tenant, recipients=[], channels=[])
    assert later.pk > max(n.pk for n in notifications)
