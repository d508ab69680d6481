"""The delivery state machine's shared moves: conditional claims and derived statuses."""

import uuid
from collections.abc import Iterable

from django.db.models import Case, Count, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from .models import Delivery, DeliveryStatus, Notification, NotificationStatus

_ACTIVE = (DeliveryStatus.PENDING, DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
_SUCCEEDED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.SUPPRESSED)
_FAILED = (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


def claim(ids: Iterable[int], from_statuses, *conditions, **changes) -> tuple[uuid.UUID, list[int]]:
    """Move rows still in `from_statuses` in one conditional UPDATE and tell exactly
    which moved: a second runner of the same step finds nothing left to claim."""
    token = uuid.uuid4()
    Delivery.objects.filter(*conditions, id__in=list(ids), status__in=from_statuses).update(
        claim_token=token, updated_at=timezone.now(), **changes
    )
    claimed = list(Delivery.objects.filter(claim_token=token).values_list("id", flat=True))
    return token, claimed


def derive_status(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if total == 0:
        return NotificationStatus.COMPLETED
    if any(counts.get(s, 0) for s in _ACTIVE):
        return NotificationStatus.PROCESSING
    if counts.get(DeliveryStatus.CANCELLED, 0) == total:
        return NotificationStatus.CANCELLED
    failed = sum(counts.get(s, 0) for s in _FAILED)
    succeeded = sum(counts.get(s, 0) for s in _SUCCEEDED)
    if failed == 0:
        return NotificationStatus.COMPLETED
    return NotificationStatus.FAILED if succeeded == 0 else NotificationStatus.PARTIALLY_FAILED


def refresh_statuses(notification_ids: Iterable[int]) -> None:
    """Recompute notifications' statuses from their deliveries, one query for the lot."""
    ids = set(notification_ids)
    if not ids:
        return
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    rows = (
        Delivery.objects.filter(notification_id__in=ids)
        .values_list("notification_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for notification_id, status, n in rows:
        counts[notification_id][status] = n
    derived = {i: derive_status(c) for i, c in counts.items()}
    Notification.objects.filter(id__in=ids).exclude(
        status__in=(NotificationStatus.SCHEDULED, NotificationStatus.ACCEPTED)
    ).update(
        status=Case(
            *[When(id=i, then=Value(s)) for i, s in derived.items()],
            output_field=Notification._meta.get_field("status"),
        ),
        updated_at=timezone.now(),
    )


def per_row(field: str, values: dict) -> Cast:
    """One UPDATE that writes a different value of `field` to each row. The cast matters:
    PostgreSQL types a CASE whose branches are all NULL as text."""
    output_field = Delivery._meta.get_field(field)
    whens = [
        When(id=row_id, then=Value(value, output_field=output_field))
        for row_id, value in values.items()
    ]
    return Cast(Case(*whens, output_field=output_field), output_field=output_field)


def end_with_errors(errors: dict[int, str], from_statuses, status: str) -> int:
    """Move rows still in `from_statuses` to a terminal `status`, each with its reason."""
    if not errors:
        return 0
    return Delivery.objects.filter(id__in=list(errors), status__in=from_statuses).update(
        status=status, error=per_row("error", errors), claim_token=None, updated_at=timezone.now()
    )


def mark_processing(notification_ids: Iterable[int]) -> None:
    Notification.objects.filter(
        id__in=set(notification_ids), status=NotificationStatus.ACCEPTED
    ).update(status=NotificationStatus.PROCESSING, updated_at=timezone.now())
