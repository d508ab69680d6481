"""update_rows: per-row values in one statement, only on rows that still match."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.common import rows
from apps.common.rows import update_rows
from apps.notifications.models import Delivery, DeliveryStatus
from tests.conftest import accept_one

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliveries(tenant):
    recipients = [{"user_id": f"u{i}", "email": f"u{i}@example.com"} for i in range(6)]
    notification = accept_one(tenant, [{"type": "email", "config": {}}], recipients)
    return list(Delivery.objects.filter(notification=notification).order_by("id"))


def test_each_row_gets_its_own_values_and_the_shared_ones(deliveries):
    now = timezone.now()
    token = uuid.uuid4()
    values = {d.id: {"subject": f"s{i}", "next_attempt_at": None} for i, d in enumerate(deliveries)}
    changed = update_rows(Delivery, values, same={"claim_token": token, "updated_at": now})
    assert changed == len(deliveries)
    for i, d in enumerate(deliveries):
        d.refresh_from_db()
        assert (d.subject, d.next_attempt_at, d.claim_token) == (f"s{i}", None, token)


def test_only_rows_matching_every_condition_change(deliveries):
    first, second, third, *rest = deliveries
    token = uuid.uuid4()
    Delivery.objects.filter(id=first.id).update(status=DeliveryStatus.SENDING, claim_token=token)
    Delivery.objects.filter(id=second.id).update(status=DeliveryStatus.SENDING)
    Delivery.objects.filter(id=third.id).update(status=DeliveryStatus.CANCELLED)
    due = timezone.now() + timedelta(minutes=5)
    values = {d.id: {"next_attempt_at": due, "error": f"e{d.id}"} for d in deliveries}

    assert update_rows(Delivery, values, where={"status": "sending", "claim_token": token}) == 1
    first.refresh_from_db()
    assert (first.error, first.next_attempt_at) == (f"e{first.id}", due)

    assert update_rows(Delivery, values, where={"status__not_in": ["sending", "cancelled"]}) == len(
        rest
    )
    assert update_rows(Delivery, values, where={"status__in": []}) == 0
    assert update_rows(Delivery, values, where={"claim_token": None, "status": "sending"}) == 1
    third.refresh_from_db()
    assert third.error == ""


def test_large_sets_are_written_in_chunks(deliveries, monkeypatch):
    monkeypatch.setattr(rows, "CHUNK_ROWS", 4)
    values = {d.id: {"body": f"b{d.id}"} for d in deliveries}
    assert update_rows(Delivery, values) == len(deliveries)
    assert {d.id: d.body for d in Delivery.objects.all()} == {d.id: f"b{d.id}" for d in deliveries}


def test_unknown_lookup_is_refused(deliveries):
    with pytest.raises(ValueError, match="unsupported lookup"):
        update_rows(Delivery, {deliveries[0].id: {"body": "x"}}, where={"id__gt": 0})
