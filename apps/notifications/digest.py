"""Digests: notifications with the same `metadata.digest_key` to one recipient on one
channel within DIGEST_WINDOW_SECONDS become one message.

The oldest such delivery still pending leads: preprocessing holds it (pending, due at
the window's end) and merges the later ones into it (`suppressed`, `digest_into` set).
The choice is the same whichever worker makes it, because it only depends on committed
rows. When the window ends, beat starts the leader's pipeline again; rendering then sees
every merged notification as `digest` in the template context.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Min

from .models import Delivery, DeliveryStatus


def window() -> timedelta:
    return timedelta(seconds=settings.DIGEST_WINDOW_SECONDS)


def group(deliveries: list[Delivery], now) -> tuple[dict[int, int], set[int]]:
    """(merged: delivery id -> leader id, leaders still inside their window)."""
    candidates = [d for d in deliveries if d.digest_key and d.recipient_id]
    if not candidates:
        return {}, set()
    oldest = (
        Delivery.objects.filter(
            tenant_id__in={d.tenant_id for d in candidates},
            digest_key__in={d.digest_key for d in candidates},
            recipient_id__in={d.recipient_id for d in candidates},
            status=DeliveryStatus.PENDING,
            digest_into__isnull=True,
            created_at__gte=min(d.created_at for d in candidates) - window(),
        )
        .values("tenant_id", "recipient_id", "channel", "digest_key")
        .annotate(first=Min("id"), since=Min("created_at"))
        .order_by()
    )
    leaders = {
        (r["tenant_id"], r["recipient_id"], r["channel"], r["digest_key"]): (r["first"], r["since"])
        for r in oldest
    }
    merged, holding = {}, set()
    for delivery in candidates:
        key = (delivery.tenant_id, delivery.recipient_id, delivery.channel, delivery.digest_key)
        leader, since = leaders.get(key, (delivery.id, delivery.created_at))
        if leader != delivery.id and delivery.created_at < since + window():
            merged[delivery.id] = leader
        elif leader == delivery.id and now < delivery.created_at + window():
            holding.add(delivery.id)
    return merged, holding


def due_leaders(now, limit: int = 1000) -> list[int]:
    """Leaders whose window has ended and which still wait for their pipeline."""
    return list(
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING,
            digest_into__isnull=True,
            next_attempt_at__lte=now,
        )
        .exclude(digest_key="")
        .values_list("id", flat=True)[:limit]
    )


def items_for(leader: Delivery) -> list[dict]:
    """What a digest template sees: each merged notification, oldest first."""
    members = [leader, *leader.digest_members.select_related("notification").order_by("id")]
    return [
        {
            "notification_id": str(m.notification.public_id),
            "title": m.notification.title,
            "content": m.notification.content,
            "metadata": m.notification.metadata,
            "created_at": m.created_at.isoformat(),
        }
        for m in members
    ]


def hold_until(delivery: Delivery):
    return delivery.created_at + window()
