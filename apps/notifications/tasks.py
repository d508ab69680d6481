"""Periodic work that keeps the guarantee "accepted means delivered or ended with a reason":
it resumes what a dead worker or a lost broker message left behind, and releases what the
database held back until its time."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.channels.retry import max_attempts

from . import digest
from .models import Delivery, DeliveryStatus, IdempotencyRecord, Notification, NotificationStatus
from .pipeline import start_pipeline
from .pipeline.deliver import enqueue_by_channel
from .state import claim, end_with_errors, refresh_statuses

SWEEP_LIMIT = 5000


def resume_stuck_sending(now) -> int:
    stale = now - timedelta(seconds=settings.SENDING_TIMEOUT_SECONDS)
    stuck = list(
        Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale).values_list(
            "id", "attempts", "notification_id", "channel"
        )[:SWEEP_LIMIT]
    )
    exhausted = {
        i: f"gave up after {a} attempts: the worker was lost while sending"
        for i, a, _, channel in stuck
        if a >= max_attempts(channel)
    }
    end_with_errors(exhausted, [DeliveryStatus.SENDING], DeliveryStatus.FAILED)
    refresh_statuses({n for i, _, n, _ in stuck if i in exhausted})
    _token, resumed = claim(
        [i for i, _, _, _ in stuck if i not in exhausted],
        [DeliveryStatus.SENDING],
        Q(claimed_at__lt=stale),
        status=DeliveryStatus.QUEUED,
        next_attempt_at=now,
        dispatched_at=now,
    )
    enqueue_by_channel(resumed)
    return len(resumed) + len(exhausted)


def redispatch_lost(now) -> int:
    grace = timedelta(seconds=settings.LOST_TASK_GRACE_SECONDS)
    lost = Q(dispatched_at__isnull=False, next_attempt_at__lt=now - grace)
    ids = list(
        Delivery.objects.filter(lost, status=DeliveryStatus.QUEUED).values_list("id", flat=True)[
            :SWEEP_LIMIT
        ]
    )
    _token, claimed = claim(
        ids, [DeliveryStatus.QUEUED], lost, next_attempt_at=now, dispatched_at=now
    )
    enqueue_by_channel(claimed)
    return len(claimed)


def restart_stale_pending(now) -> int:
    ids = list(
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING,
            created_at__lt=now - timedelta(seconds=settings.STALE_PENDING_SECONDS),
            notification__status__in=(NotificationStatus.ACCEPTED, NotificationStatus.PROCESSING),
        ).values_list("id", flat=True)[:SWEEP_LIMIT]
    )
    if ids:
        start_pipeline(ids)
    return len(ids)


@shared_task(name="notifications.sweep")
def sweep() -> dict[str, int]:
    now = timezone.now()
    return {
        "resumed_sending": resume_stuck_sending(now),
        "redispatched": redispatch_lost(now),
        "restarted_pending": restart_stale_pending(now),
    }


def release_due_notifications(now) -> int:
    ids = list(
        Notification.objects.filter(
            status=NotificationStatus.SCHEDULED, send_at__lte=now
        ).values_list("id", flat=True)[:1000]
    )
    if not ids:
        return 0
    Notification.objects.filter(id__in=ids, status=NotificationStatus.SCHEDULED).update(
        status=NotificationStatus.ACCEPTED, updated_at=now
    )
    start_pipeline(
        list(
            Delivery.objects.filter(
                notification_id__in=ids, status=DeliveryStatus.PENDING
            ).values_list("id", flat=True)
        )
    )
    return len(ids)


def release_held_deliveries(now) -> int:
    held = Q(dispatched_at__isnull=True, next_attempt_at__lte=now)
    ids = list(
        Delivery.objects.filter(held, status=DeliveryStatus.QUEUED).values_list("id", flat=True)[
            :SWEEP_LIMIT
        ]
    )
    _token, claimed = claim(ids, [DeliveryStatus.QUEUED], held, dispatched_at=now)
    enqueue_by_channel(claimed)
    return len(claimed)


@shared_task(name="notifications.release_scheduled")
def release_scheduled() -> dict[str, int]:
    now = timezone.now()
    return {
        "notifications": release_due_notifications(now),
        "deliveries": release_held_deliveries(now),
        "digests": release_due_digests(now),
    }


def release_due_digests(now) -> int:
    leaders = digest.due_leaders(now)
    if leaders:
        start_pipeline(leaders)
    return len(leaders)


@shared_task(name="notifications.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
