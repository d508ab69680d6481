"""The last step: a per-channel task that sends a batch and records results promptly."""

import logging
from collections import defaultdict
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.channels.base import ChannelError, OutboundMessage
from apps.channels.registry import get_backend
from apps.channels.retry import backoff_seconds
from apps.common.routing import DELIVER_TASK
from apps.common.rows import update_rows

from .. import metrics
from ..models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus
from ..state import claim, refresh_statuses

logger = logging.getLogger("apps.notifications.deliver")
# Waits up to this long go to the broker as a countdown; longer ones stay in the
# database for the releaser (a countdown past the Redis visibility timeout repeats).
BROKER_COUNTDOWN_LIMIT = 60.0


def enqueue(channel: str, ids: list[int], countdown: float | None = None) -> None:
    size = settings.DELIVERY_BATCH_SIZE
    for start in range(0, len(ids), size):
        task.apply_async(args=[channel, ids[start : start + size]], countdown=countdown)


def enqueue_by_channel(ids: list[int]) -> None:
    by_channel: dict[str, list[int]] = defaultdict(list)
    for row_id, channel in Delivery.objects.filter(id__in=ids).values_list("id", "channel"):
        by_channel[channel].append(row_id)
    for channel, batch in by_channel.items():
        enqueue(channel, sorted(batch))


def message_for(delivery: Delivery) -> OutboundMessage:
    notification = delivery.notification
    channel = notification.channels[delivery.channel_index]
    recipient = notification.recipients[delivery.recipient_index]
    return OutboundMessage(
        delivery_id=str(delivery.public_id),
        notification_id=str(notification.public_id),
        address=delivery.address,
        subject=delivery.subject,
        body=delivery.body,
        html_body=delivery.html_body,
        config=channel.get("config", {}),
        recipient={k: v for k, v in recipient.items() if k != "push_tokens"},
        priority=notification.priority,
        metadata=notification.metadata,
        credentials={"signing_secret": notification.tenant.webhook_signing_secret},
    )


class Recorder:
    """Collects outcomes and writes them in small groups, each group one transaction:
    a crash repeats at most one group's sends, never what is already recorded."""

    def __init__(self, channel: str, token, deliveries: dict[str, Delivery]):
        self.channel = channel
        self.token = token
        self.deliveries = deliveries
        self.pending: list[tuple[Delivery, object, float]] = []
        self.retries: dict[float, list[int]] = defaultdict(list)

    def add(self, message: OutboundMessage, outcome, seconds: float) -> None:
        self.pending.append((self.deliveries[message.delivery_id], outcome, seconds))
        metrics.delivery_seconds.labels(channel=self.channel).observe(seconds)
        if len(self.pending) >= settings.DELIVERY_RECORD_GROUP:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        group, self.pending = self.pending, []
        now = timezone.now()
        with transaction.atomic():
            self._record_successes(
                [(d, o) for d, o, _ in group if not isinstance(o, ChannelError)], now
            )
            self._record_failures([(d, o) for d, o, _ in group if isinstance(o, ChannelError)], now)
            DeliveryAttempt.objects.bulk_create([self._attempt(d, o, s, now) for d, o, s in group])

    def _update_mine(self, rows: dict[int, dict], **same) -> None:
        """Write to rows this run still holds (a sweeper may have taken them back)."""
        update_rows(
            Delivery,
            rows,
            where={"status": DeliveryStatus.SENDING, "claim_token": self.token},
            same={**same, "claim_token": None},
        )

    def _record_successes(self, rows, now) -> None:
        for delivered in (True, False):
            chosen = [(d, o) for d, o in rows if o.delivered is delivered]
            if not chosen:
                continue
            status = DeliveryStatus.DELIVERED if delivered else DeliveryStatus.SENT
            self._update_mine(
                {d.id: {"provider_message_id": o.provider_message_id or ""} for d, o in chosen},
                status=status,
                sent_at=now,
                delivered_at=now if delivered else None,
                error="",
                updated_at=now,
            )
            metrics.deliveries_total.labels(channel=self.channel, status=status).inc(len(chosen))

    def _record_failures(self, rows, now) -> None:
        failed, retry = {}, {}
        for delivery, error in rows:
            if error.permanent:
                failed[delivery.id] = error.message
            elif delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
                failed[delivery.id] = f"gave up after {delivery.attempts} attempts: {error.message}"
            else:
                retry[delivery.id] = (
                    backoff_seconds(delivery.attempts, error.retry_after),
                    error.message,
                )
        if failed:
            self._update_mine(
                {i: {"error": error} for i, error in failed.items()},
                status=DeliveryStatus.FAILED,
                updated_at=now,
            )
            metrics.deliveries_total.labels(channel=self.channel, status="failed").inc(len(failed))
        if retry:
            self._schedule_retries(retry, now)

    def _schedule_retries(self, retry: dict[int, tuple[float, str]], now) -> None:
        due = {i: now + timedelta(seconds=delay) for i, (delay, _) in retry.items()}
        by_broker = {i for i, (delay, _) in retry.items() if delay <= BROKER_COUNTDOWN_LIMIT}
        self._update_mine(
            {
                i: {
                    "error": message,
                    "next_attempt_at": due[i],
                    "dispatched_at": now if i in by_broker else None,
                }
                for i, (_, message) in retry.items()
            },
            status=DeliveryStatus.QUEUED,
            updated_at=now,
        )
        if by_broker:
            countdown = max(retry[i][0] for i in by_broker)
            ids = sorted(by_broker)
            transaction.on_commit(lambda: enqueue(self.channel, ids, countdown=countdown))

    @staticmethod
    def _attempt(delivery, outcome, seconds, now) -> DeliveryAttempt:
        if isinstance(outcome, ChannelError):
            kind = (
                AttemptOutcome.PERMANENT_ERROR
                if outcome.permanent
                else AttemptOutcome.TRANSIENT_ERROR
            )
            code, error = outcome.response_code, outcome.message
        else:
            kind, code, error = AttemptOutcome.SUCCESS, outcome.response_code, ""
        return DeliveryAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            started_at=now - timedelta(seconds=seconds),
            duration_ms=int(seconds * 1000),
            outcome=kind,
            response_code=code,
            error=error[:2000],
        )


def deliver(channel: str, ids: list[int]) -> int:
    now = timezone.now()
    token, claimed = claim(
        ids,
        [DeliveryStatus.QUEUED],
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        status=DeliveryStatus.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return 0
    deliveries = {
        str(d.public_id): d
        for d in Delivery.objects.filter(id__in=claimed).select_related("notification__tenant")
    }
    recorder = Recorder(channel, token, deliveries)
    messages = [message_for(d) for d in deliveries.values()]
    for message, outcome, seconds in get_backend(channel).send_batch(messages):
        recorder.add(message, outcome, seconds)
    recorder.flush()
    refresh_statuses({d.notification_id for d in deliveries.values()})
    return len(claimed)


@shared_task(name=DELIVER_TASK, acks_late=True)
def task(channel: str, ids: list[int]) -> int:
    return deliver(channel, ids)
