"""The notifications app's entry points for the API, admin, commands and other apps."""

import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import trail as audit
from apps.channels.registry import get_backend
from apps.common.copy import create_all
from apps.tenants.models import Tenant

from . import extensions, metrics
from .models import (
    CANCELLABLE_DELIVERY_STATUSES,
    Delivery,
    DeliveryStatus,
    IdempotencyRecord,
    Notification,
    NotificationStatus,
)
from .pipeline import start_pipeline
from .state import refresh_statuses


def canonical_hash(value) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def _dedup_key(tenant_id: int, data: dict, recipient: dict, channel: dict, address: str) -> str:
    config = {
        k: v
        for k, v in channel["config"].items()
        if k not in ("fallback", "delay_seconds", "delay_minutes")
    }
    return canonical_hash(
        [
            tenant_id,
            channel["type"],
            address,
            recipient.get("user_id"),
            data.get("title", ""),
            data.get("content", ""),
            data.get("template", ""),
            data.get("locale", ""),
            data.get("metadata", {}),
            recipient.get("metadata", {}),
            config,
        ]
    )


def _digest_key(data: dict) -> str:
    key = (data.get("metadata") or {}).get("digest_key")
    return hashlib.sha256(str(key).encode()).hexdigest() if key not in (None, "") else ""


def _build_notification(tenant: Tenant, data: dict, now) -> Notification:
    send_at = data.get("send_at")
    scheduled = send_at is not None and send_at > now
    return Notification(
        tenant=tenant,
        status=NotificationStatus.SCHEDULED if scheduled else NotificationStatus.ACCEPTED,
        priority=data["priority"],
        title=data.get("title", ""),
        content=data.get("content", ""),
        template_key=data.get("template", ""),
        template_version=data.get("template_version"),
        has_escalation=bool(data.get("escalation")),
        locale=data.get("locale", ""),
        recipients=data["recipients"],
        channels=data["channels"],
        metadata=data.get("metadata", {}),
        send_at=send_at,
    )


def _build_deliveries(tenant: Tenant, notification: Notification, data: dict) -> list[Delivery]:
    deliveries = []
    for recipient_index, recipient in enumerate(data["recipients"]):
        for channel_index, channel in enumerate(data["channels"]):
            if channel["config"].get("fallback"):
                continue  # a fallback delivery exists only once it is needed
            address = get_backend(channel["type"]).address_for(recipient, channel["config"])
            deliveries.append(
                Delivery(
                    tenant=tenant,
                    notification=notification,
                    recipient_index=recipient_index,
                    recipient_id=recipient.get("user_id", ""),
                    channel=channel["type"],
                    channel_index=channel_index,
                    address=address or "",
                    dedup_key=_dedup_key(tenant.pk, data, recipient, channel, address or ""),
                    digest_key=_digest_key(data),
                )
            )
    return deliveries


def accept(tenant: Tenant, items: list[dict]) -> list[tuple[Notification, int]]:
    """Write notifications and their deliveries in one transaction, then start the
    pipeline once it commits. Returns each notification with its delivery count."""
    now = timezone.now()
    with transaction.atomic():
        notifications = create_all(
            Notification, [_build_notification(tenant, data, now) for data in items]
        )
        per_notification = [
            _build_deliveries(tenant, notification, data)
            for notification, data in zip(notifications, items, strict=True)
        ]
        deliveries = create_all(
            Delivery, [delivery for group in per_notification for delivery in group]
        )
        for notification, data in zip(notifications, items, strict=True):
            if data.get("escalation") and extensions.escalations is not None:
                extensions.escalations.start(notification, data["escalation"])
        audit.record_many(
            tenant.pk,
            [
                audit.Entry(
                    "notification.accepted",
                    "notification",
                    str(n.public_id),
                    metadata={
                        "deliveries": len(group),
                        "channels": [c["type"] for c in n.channels],
                        "priority": n.priority,
                    },
                )
                for n, group in zip(notifications, per_notification, strict=True)
            ],
        )
        ready = [d.pk for d in deliveries if d.notification.status == NotificationStatus.ACCEPTED]
        if ready:
            transaction.on_commit(lambda: start_pipeline(ready))
    metrics.requests_total.inc(len(notifications))
    return [(n, len(group)) for n, group in zip(notifications, per_notification, strict=True)]


def idempotent(tenant: Tenant, key: str | None, request_body, produce):
    """Answer the first response again for a repeated key with the same body; `produce`
    runs inside the transaction that records the key, so both commit or neither."""
    if not key:
        return produce()
    request_hash = canonical_hash(request_body)
    expired_before = timezone.now() - timedelta(hours=24)
    with transaction.atomic():
        IdempotencyRecord.objects.filter(
            tenant=tenant, key=key, created_at__lt=expired_before
        ).delete()
        existing = IdempotencyRecord.objects.filter(tenant=tenant, key=key).first()
        if existing is None:
            status_code, body = produce()
            try:
                with transaction.atomic():
                    IdempotencyRecord.objects.create(
                        tenant=tenant,
                        key=key,
                        request_hash=request_hash,
                        status_code=status_code,
                        response=body,
                    )
                return status_code, body
            except IntegrityError:
                # A concurrent request with the same key committed first: undo ours.
                transaction.set_rollback(True)
    existing = IdempotencyRecord.objects.get(tenant=tenant, key=key)
    if existing.request_hash != request_hash:
        return None
    return existing.status_code, existing.response


def cancel(notification: Notification) -> int:
    """Cancel what has not been sent yet; returns how many deliveries it stopped."""
    with transaction.atomic():
        count = Delivery.objects.filter(
            notification=notification, status__in=CANCELLABLE_DELIVERY_STATUSES
        ).update(
            status=DeliveryStatus.CANCELLED, error="cancelled by request", updated_at=timezone.now()
        )
        Notification.objects.filter(
            pk=notification.pk,
            status__in=(NotificationStatus.SCHEDULED, NotificationStatus.ACCEPTED),
        ).update(status=NotificationStatus.PROCESSING)
        refresh_statuses([notification.pk])
        audit.record(
            notification.tenant_id,
            "notification.cancelled",
            "notification",
            notification.public_id,
            metadata={"deliveries_stopped": count},
        )
    return count


def add_recipients(notification_id: int, recipients: list[dict], channel_types: list[str]):
    """Reach more people with an accepted notification (an escalation level): each
    recipient on each channel once, however often this is called; a recipient already
    on the notification with the same user_id is not added twice. Returns the new
    deliveries' ids; their pipeline starts when the transaction commits."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        channel_index = _indices(notification.channels, channel_types)
        recipient_index = _recipient_indices(notification.recipients, recipients)
        wanted = [
            (recipient_index[i], channel_index[t], recipient, t)
            for i, recipient in enumerate(recipients)
            for t in channel_types
        ]
        existing = set(
            Delivery.objects.filter(notification=notification).values_list(
                "recipient_index", "channel_index"
            )
        )
        fresh = [
            _escalation_delivery(notification, r_index, c_index, recipient, channel)
            for r_index, c_index, recipient, channel in wanted
            if (r_index, c_index) not in existing
        ]
        fresh = [d for d in fresh if d.address]
        notification.status = NotificationStatus.PROCESSING
        notification.save(update_fields=["recipients", "channels", "status", "updated_at"])
        created = Delivery.objects.bulk_create(fresh, ignore_conflicts=True)
        ids = list(
            Delivery.objects.filter(
                notification=notification, public_id__in=[d.public_id for d in created]
            ).values_list("id", flat=True)
        )
        if ids:
            transaction.on_commit(lambda: start_pipeline(ids))
    return ids


def _indices(channels: list[dict], types: list[str]) -> dict[str, int]:
    primary = [(i, c) for i, c in enumerate(channels) if not c.get("config", {}).get("fallback")]
    found = {c["type"]: i for i, c in primary}
    for channel_type in types:
        if channel_type not in found:
            channels.append({"type": channel_type, "config": {}})
            found[channel_type] = len(channels) - 1
    return found


def _recipient_indices(existing: list[dict], recipients: list[dict]) -> dict[int, int]:
    by_user = {r.get("user_id"): i for i, r in enumerate(existing) if r.get("user_id")}
    indices = {}
    for i, recipient in enumerate(recipients):
        user_id = recipient.get("user_id")
        if user_id in by_user:
            indices[i] = by_user[user_id]
        else:
            existing.append(recipient)
            indices[i] = by_user[user_id] = len(existing) - 1
    return indices


def _escalation_delivery(notification, r_index, c_index, recipient, channel) -> Delivery:
    address = get_backend(channel).address_for(recipient, {}) or ""
    return Delivery(
        tenant_id=notification.tenant_id,
        notification=notification,
        recipient_index=r_index,
        recipient_id=recipient.get("user_id", ""),
        channel=channel,
        channel_index=c_index,
        address=address,
        # Each level's message is its own; never a duplicate of an earlier one.
        dedup_key=canonical_hash(["escalation", str(notification.public_id), r_index, c_index]),
    )
