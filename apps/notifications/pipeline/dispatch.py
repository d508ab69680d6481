"""Stage 3: queue ready deliveries and hand them to their channel's delivery queue."""

from collections import defaultdict
from datetime import timedelta

from django.utils import timezone

from ..models import Delivery, DeliveryStatus, Notification
from ..state import claim
from .deliver import BROKER_COUNTDOWN_LIMIT, enqueue
from .stage import stage_task


def delay_of(config: dict) -> float:
    return float(config.get("delay_seconds", 0)) + 60.0 * config.get("delay_minutes", 0)


@stage_task("dispatch")
def task(ids: list[int]) -> list[int]:
    now = timezone.now()
    rows = list(
        Delivery.objects.filter(id__in=ids, status=DeliveryStatus.PENDING).values(
            "id", "channel", "channel_index", "notification_id", "next_attempt_at"
        )
    )
    if not rows:
        return []
    # Each notification's channel list once, not once per recipient's delivery.
    channels = dict(
        Notification.objects.filter(id__in={r["notification_id"] for r in rows}).values_list(
            "id", "channels"
        )
    )
    delays = {r["id"]: delay_for(r, channels[r["notification_id"]], now) for r in rows}
    due = {i: now + timedelta(seconds=d) for i, d in delays.items()}
    held = {i for i, d in delays.items() if d > BROKER_COUNTDOWN_LIMIT}
    _token, claimed = claim(
        list(delays),
        [DeliveryStatus.PENDING],
        status=DeliveryStatus.QUEUED,
        each={
            i: {"next_attempt_at": due[i], "dispatched_at": None if i in held else now}
            for i in delays
        },
    )
    channel_of = {r["id"]: r["channel"] for r in rows}
    by_channel_and_delay: dict[tuple[str, float], list[int]] = defaultdict(list)
    for row_id in claimed:
        if row_id not in held:
            by_channel_and_delay[(channel_of[row_id], delays[row_id])].append(row_id)
    for (channel, delay), batch in sorted(by_channel_and_delay.items()):
        enqueue(channel, sorted(batch), countdown=delay or None)
    return claimed


def delay_for(row: dict, channels: list[dict], now) -> float:
    """The channel's delay, or longer when preprocessing held the delivery (quiet hours)."""
    configured = delay_of(channels[row["channel_index"]].get("config", {}))
    until = row["next_attempt_at"]
    return max(configured, (until - now).total_seconds() if until else 0.0)
