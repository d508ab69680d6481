"""The delivery state machine's shared moves: conditional claims and derived statuses."""

import uuid
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from apps.common.rows import update_rows

from .failover import fail_over
from .models import Delivery, DeliveryStatus, Notification, NotificationStatus

_ACTIVE = (DeliveryStatus.PENDING, DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
_SUCCEEDED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.SUPPRESSED)
_FAILED = (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


def claim(
    ids: Iterable[int], from_statuses, *conditions, each: dict | None = None, **changes
) -> tuple[uuid.UUID, list[int]]:
    """Move rows still in `from_statuses` in one conditional UPDATE and tell exactly
    which moved: a second runner of the same step finds nothing left to claim.
    `each` gives per-row values (id -> {field: value}) for every id."""
    ids = list(each) if each is not None else list(ids)
    token = mark(ids, from_statuses, *conditions, each=each, **changes)
    return token, sorted(claimed_by(token, ids).values_list("id", flat=True))


def mark(ids: list[int], from_statuses, *conditions, each=None, **changes) -> uuid.UUID:
    """The UPDATE half of `claim`: returns the token that `claimed_by` finds rows by."""
    token = uuid.uuid4()
    changes.update(claim_token=token, updated_at=timezone.now())
    if each is not None:
        assert not conditions, "per-row claims take no extra conditions"
        update_rows(Delivery, each, where={"status__in": from_statuses}, same=changes)
    else:
        Delivery.objects.filter(*conditions, id__in=ids, status__in=from_statuses).update(**changes)
    return token


def claimed_by(token: uuid.UUID, ids: list[int]):
    # Looked up by primary key: an index on claim_token would cost a write on every move.
    return Delivery.objects.filter(id__in=ids, claim_token=token)


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
    # Counted here rather than with GROUP BY and NOT EXISTS: a fallback belongs to the
    # same notification, so these rows are all it takes, fetched by the unique index.
    rows = list(
        Delivery.objects.filter(notification_id__in=ids).values_list(
            "id", "notification_id", "status", "fallback_for_id"
        )
    )
    # A failed delivery that has a fallback is represented by that fallback.
    superseded = {fallback_for for *_, fallback_for in rows if fallback_for is not None}
    for delivery_id, notification_id, status, _ in rows:
        if delivery_id not in superseded:
            counts[notification_id][status] = counts[notification_id].get(status, 0) + 1
    update_rows(
        Notification,
        {i: {"status": derive_status(c)} for i, c in counts.items()},
        where={"status__not_in": [NotificationStatus.SCHEDULED, NotificationStatus.ACCEPTED]},
        same={"updated_at": timezone.now()},
    )


def end_with_errors(errors: dict[int, str], from_statuses, status: str) -> int:
    """Move rows still in `from_statuses` to a terminal `status`, each with its reason;
    a failure hands the recipient to the notification's next fallback channel."""
    if not errors:
        return 0
    with transaction.atomic():
        changed = update_rows(
            Delivery,
            {i: {"error": error} for i, error in errors.items()},
            where={"status__in": from_statuses},
            same={"status": status, "claim_token": None, "updated_at": timezone.now()},
        )
        if status == DeliveryStatus.FAILED:
            fail_over(errors)
    return changed


def mark_processing(notification_ids: Iterable[int]) -> None:
    Notification.objects.filter(
        id__in=set(notification_ids), status=NotificationStatus.ACCEPTED
    ).update(status=NotificationStatus.PROCESSING, updated_at=timezone.now())
