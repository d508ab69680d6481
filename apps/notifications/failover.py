"""Failover: a recipient whose delivery failed for good gets the notification's next
`fallback: true` channel instead (API.md, Channel config).

A fallback delivery exists only once it is needed. It is created in the transaction
that records the failure, and the unique (notification, recipient, channel) constraint
makes a second attempt at the same failover a no-op, so two workers recording the same
failure never create two fallbacks.
"""

import hashlib
from collections.abc import Iterable

from django.db import transaction

from apps.channels.registry import get_backend

from .models import Delivery, DeliveryStatus

_FAILED = (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


def next_fallback(notification, recipient_index: int, after_index: int):
    """The first fallback channel after `after_index` that can reach the recipient."""
    recipient = notification.recipients[recipient_index]
    for index in range(after_index + 1, len(notification.channels)):
        channel = notification.channels[index]
        config = channel.get("config", {})
        if not config.get("fallback"):
            continue
        address = get_backend(channel["type"]).address_for(recipient, config)
        if address:
            return index, channel["type"], address
    return None


def fail_over(failed_ids: Iterable[int]) -> list[int]:
    """Create the fallback deliveries for these failed deliveries (those with a fallback
    channel left to go to), and start the pipeline for them once the transaction
    commits. Returns their ids. A fallback replaces one failed channel: a recipient
    reached on another primary channel still gets it, and two failed channels that fall
    over to the same one give one fallback delivery, not two."""
    failed = list(
        Delivery.objects.filter(id__in=list(failed_ids), status__in=_FAILED)
        .select_related("notification")
        .order_by("id")
    )
    if not failed:
        return []
    fallbacks = []
    for delivery in failed:
        found = next_fallback(
            delivery.notification, delivery.recipient_index, delivery.channel_index
        )
        if found:
            fallbacks.append(_fallback_for(delivery, *found))
    if not fallbacks:
        return []
    mine = Delivery.objects.filter(fallback_for_id__in=[d.fallback_for_id for d in fallbacks])
    existing = set(mine.values_list("id", flat=True))
    Delivery.objects.bulk_create(fallbacks, ignore_conflicts=True)
    created = sorted(set(mine.values_list("id", flat=True)) - existing)
    if created:
        transaction.on_commit(lambda: _start(created))
    return created


def _fallback_for(failed: Delivery, channel_index: int, channel: str, address: str) -> Delivery:
    return Delivery(
        tenant_id=failed.tenant_id,
        notification_id=failed.notification_id,
        recipient_index=failed.recipient_index,
        recipient_id=failed.recipient_id,
        channel=channel,
        channel_index=channel_index,
        address=address,
        fallback_for=failed,
        # Never a duplicate of anything: it exists because its original failed.
        dedup_key=hashlib.sha256(f"fallback:{failed.public_id}".encode()).hexdigest(),
    )


def _start(ids: list[int]) -> None:
    # The pipeline's modules import this one (deliver records failures here), so the
    # pipeline is looked up when first needed rather than at import time.
    from .pipeline import start_pipeline

    start_pipeline(ids)
