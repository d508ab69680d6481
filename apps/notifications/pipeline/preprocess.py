"""Stage 1: drop what must not be sent (unsendable deliveries, duplicates in the window)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from apps.channels.registry import is_registered
from apps.common.rows import update_rows

from .. import digest
from ..models import Delivery, DeliveryStatus, Notification, Priority
from ..preferences import preferences_for, quiet_until
from ..state import end_with_errors, mark_processing, refresh_statuses
from .stage import stage_task

_NOT_COUNTED_FOR_DEDUP = (
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.CANCELLED,
    DeliveryStatus.FAILED,
)


def first_of_each_key(deliveries: list[Delivery]) -> dict[str, int]:
    """For each dedup key, the oldest live delivery within the window."""
    window = timedelta(seconds=settings.DEDUP_WINDOW_SECONDS)
    rows = (
        Delivery.objects.filter(
            tenant_id__in={d.tenant_id for d in deliveries},
            dedup_key__in={d.dedup_key for d in deliveries},
            created_at__gte=min(d.created_at for d in deliveries) - window,
        )
        .exclude(status__in=_NOT_COUNTED_FOR_DEDUP)
        .values("tenant_id", "dedup_key")
        .annotate(first=Min("id"))
        .order_by()
    )
    return {(row["tenant_id"], row["dedup_key"]): row["first"] for row in rows}


def rejections(deliveries: list[Delivery]) -> tuple[dict[int, str], dict[int, str]]:
    failed = {
        d.id: f"channel {d.channel!r} is not available"
        for d in deliveries
        if not is_registered(d.channel)
    }
    suppressed: dict[int, str] = {}
    if settings.DEDUP_WINDOW_SECONDS and deliveries:
        first = first_of_each_key(deliveries)
        for d in deliveries:
            original = first.get((d.tenant_id, d.dedup_key), d.id)
            if original < d.id and d.id not in failed:
                suppressed[d.id] = f"duplicate of an identical message (delivery #{original})"
    return failed, suppressed


def apply_preferences(deliveries: list[Delivery], now) -> tuple[dict[int, str], dict[int, object]]:
    """Opted-out channels are suppressed; quiet hours hold a delivery until they end,
    unless the notification is critical. Returns (suppressed reasons, held until)."""
    suppressed, held = {}, {}
    by_tenant: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        if delivery.recipient_id:
            by_tenant.setdefault(delivery.tenant_id, []).append(delivery)
    critical = set(
        Notification.objects.filter(
            id__in={d.notification_id for d in deliveries}, priority=Priority.CRITICAL
        ).values_list("id", flat=True)
    )
    for tenant_id, members in by_tenant.items():
        found = preferences_for(tenant_id, {d.recipient_id for d in members})
        for delivery in members:
            preference = found.get(delivery.recipient_id)
            if preference is None:
                continue
            if not preference.allows(delivery.channel):
                suppressed[delivery.id] = f"recipient turned off {delivery.channel}"
            elif delivery.notification_id not in critical:
                until = quiet_until(preference.quiet_hours, now)
                if until is not None:
                    held[delivery.id] = until
    return suppressed, held


@stage_task("preprocess")
def task(ids: list[int]) -> list[int]:
    deliveries = list(
        Delivery.objects.filter(id__in=ids, status=DeliveryStatus.PENDING).only(
            "id",
            "tenant_id",
            "notification_id",
            "channel",
            "dedup_key",
            "created_at",
            "recipient_id",
            "digest_key",
        )
    )
    mark_processing(d.notification_id for d in deliveries)
    now = timezone.now()
    failed, suppressed = rejections(deliveries)
    opted_out, held = apply_preferences(deliveries, now)
    suppressed.update({i: reason for i, reason in opted_out.items() if i not in failed})
    live = [d for d in deliveries if d.id not in failed and d.id not in suppressed]
    merged, holding = digest.group(live, now)
    if merged:
        update_rows(Delivery, {i: {"digest_into": leader} for i, leader in merged.items()})
        suppressed.update(
            {i: f"merged into the digest of delivery #{lead}" for i, lead in merged.items()}
        )
    if holding:
        leaders = {d.id: digest.hold_until(d) for d in live if d.id in holding}
        update_rows(
            Delivery,
            {i: {"next_attempt_at": until} for i, until in leaders.items()},
            where={"status": DeliveryStatus.PENDING},
        )
    if held:
        update_rows(
            Delivery,
            {i: {"next_attempt_at": until} for i, until in held.items()},
            where={"status": DeliveryStatus.PENDING},
        )
    end_with_errors(failed, [DeliveryStatus.PENDING], DeliveryStatus.FAILED)
    end_with_errors(suppressed, [DeliveryStatus.PENDING], DeliveryStatus.SUPPRESSED)
    dropped = failed.keys() | suppressed.keys()
    if dropped:
        refresh_statuses({d.notification_id for d in deliveries if d.id in dropped})
    # Digest leaders wait, pending, for their window to end (beat starts them again).
    return [d.id for d in deliveries if d.id not in dropped and d.id not in holding]
