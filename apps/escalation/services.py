"""Escalations: start, fire a level exactly once, acknowledge, resolve, audit.

Every level is one Celery task with a countdown whose task id is generated in advance
and stored on the escalation as `active_token`. Firing locks the row and does nothing
unless the token still matches (a duplicate delivery of the message, or a newer
schedule, finds a different token), so a level runs once however often its message
arrives; the auditor fires, the same way, any level whose time has passed (a worker
died holding the message, or the broker lost it).
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.trail import record
from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.services import add_recipients
from apps.tenants.models import Contact

from . import metrics
from .models import Condition, Escalation, EscalationPolicy, State, TimelineEntry

logger = logging.getLogger("apps.escalation")
_FAILED = (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


def expanded_levels(snapshot: dict) -> list[dict]:
    levels = list(snapshot["levels"])
    return levels + [levels[-1]] * int(snapshot.get("repeat_last", 0))


def delay_of(level: dict) -> float:
    return float(level.get("delay_seconds", 0)) + 60.0 * float(level.get("delay_minutes", 0))


def snapshot_for(tenant, value: dict) -> tuple[str, dict]:
    if value.get("policy"):
        policy = EscalationPolicy.objects.get(tenant=tenant, name=value["policy"])
        return policy.name, {"levels": policy.levels, "repeat_last": policy.repeat_last}
    return "", {"levels": value["levels"], "repeat_last": value.get("repeat_last", 0)}


def start(notification, value: dict) -> Escalation:
    """Create the escalation (inside the accepting transaction) and schedule level 1."""
    name, snapshot = snapshot_for(notification.tenant, value)
    escalation = Escalation.objects.create(
        tenant=notification.tenant, notification=notification, policy_name=name, snapshot=snapshot
    )
    TimelineEntry.objects.create(escalation=escalation, kind="triggered")
    first = expanded_levels(snapshot)[0]
    schedule(escalation, 0, timezone.now() + timedelta(seconds=delay_of(first)))
    return escalation


def schedule(escalation: Escalation, index: int, due) -> None:
    """Make `index` the next level, due at `due`, with a fresh token; its task is sent
    when the transaction commits. Past the last level, nothing is scheduled."""
    if index >= len(expanded_levels(escalation.snapshot)):
        escalation.next_level = escalation.next_due_at = escalation.active_token = None
        escalation.save(update_fields=["next_level", "next_due_at", "active_token", "updated_at"])
        return
    token = uuid.uuid4()
    escalation.next_level, escalation.next_due_at, escalation.active_token = index, due, token
    escalation.save(update_fields=["next_level", "next_due_at", "active_token", "updated_at"])
    countdown = max(0.0, (due - timezone.now()).total_seconds())
    transaction.on_commit(lambda: _send_level_task(escalation.id, index, token, countdown))


def _send_level_task(escalation_id: int, index: int, token, countdown: float) -> None:
    from .tasks import fire_level  # the task module imports this one

    fire_level.apply_async(
        args=[escalation_id, index, str(token)], countdown=countdown, task_id=str(token)
    )


def condition_holds(state: str, condition: str) -> bool:
    if state == State.RESOLVED:
        return False
    if condition == Condition.NO_ACKNOWLEDGMENT:
        return state == State.TRIGGERED
    return True  # always, no_resolution: anything short of resolved


def targets(tenant_id: int, level: dict) -> list[Contact]:
    roles, users = level.get("target_roles") or [], level.get("target_users") or []
    contacts = Contact.objects.filter(tenant_id=tenant_id)
    return [c for c in contacts.order_by("user_id") if c.role in roles or c.user_id in users]


def fire(escalation_id: int, index: int, token: str, source: str = "task") -> str:
    """Fire level `index` if `token` is still the active one; returns what happened."""
    with transaction.atomic():
        escalation = Escalation.objects.select_for_update().filter(id=escalation_id).first()
        if escalation is None or str(escalation.active_token) != str(token):
            return "stale"
        if escalation.next_level != index:
            return "stale"
        now = timezone.now()
        metrics.lateness.observe(max(0.0, (now - escalation.next_due_at).total_seconds()))
        levels = expanded_levels(escalation.snapshot)
        level = levels[index]
        if condition_holds(escalation.state, level.get("condition", Condition.ALWAYS)):
            notify_level(escalation, index, level, source)
        else:
            TimelineEntry.objects.create(
                escalation=escalation,
                kind="level_skipped",
                level=index + 1,
                detail={"condition": level.get("condition"), "state": escalation.state},
            )
        escalation.level_reached = index
        escalation.save(update_fields=["level_reached", "updated_at"])
        if escalation.state == State.RESOLVED:
            schedule(escalation, len(levels), None)
        elif index + 1 < len(levels):
            due = now + timedelta(seconds=delay_of(levels[index + 1]))
            schedule(escalation, index + 1, due)
        else:
            schedule(escalation, len(levels), None)
    return "fired"


def notify_level(escalation: Escalation, index: int, level: dict, source: str) -> None:
    contacts = targets(escalation.tenant_id, level)
    ids = add_recipients(
        escalation.notification_id, [c.as_recipient() for c in contacts], list(level["channels"])
    )
    TimelineEntry.objects.create(
        escalation=escalation,
        kind="level_fired",
        level=index + 1,
        detail={
            "contacts": [c.user_id for c in contacts],
            "channels": list(level["channels"]),
            "deliveries": ids,
            "source": source,
        },
    )


def acknowledge(escalation: Escalation, by: str) -> Escalation:
    with transaction.atomic():
        escalation = Escalation.objects.select_for_update().get(pk=escalation.pk)
        if escalation.state != State.TRIGGERED:
            raise InvalidTransition(f"The escalation is {escalation.state} already.")
        escalation.state = State.ACKNOWLEDGED
        escalation.acknowledged_at, escalation.acknowledged_by = timezone.now(), by
        escalation.save()
        TimelineEntry.objects.create(escalation=escalation, kind="acknowledged", by=by)
        record(
            escalation.tenant_id,
            "escalation.acknowledged",
            "escalation",
            escalation.public_id,
            metadata={"by": by},
        )
    return escalation


def resolve(escalation: Escalation, by: str) -> Escalation:
    with transaction.atomic():
        escalation = Escalation.objects.select_for_update().get(pk=escalation.pk)
        if escalation.state == State.RESOLVED:
            raise InvalidTransition("The escalation is resolved already.")
        escalation.state = State.RESOLVED
        escalation.resolved_at, escalation.resolved_by = timezone.now(), by
        escalation.next_level = escalation.next_due_at = escalation.active_token = None
        escalation.save()
        TimelineEntry.objects.create(escalation=escalation, kind="resolved", by=by)
        record(
            escalation.tenant_id,
            "escalation.resolved",
            "escalation",
            escalation.public_id,
            metadata={"by": by},
        )
    return escalation


class InvalidTransition(Exception):
    pass


def audit(now=None) -> dict[str, int]:
    """Fire overdue levels (their task was lost), then levels whose previous level's
    deliveries all failed (escalate on receipts)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ESCALATION_AUDIT_GRACE_SECONDS)
    overdue = list(
        Escalation.objects.filter(
            next_due_at__lte=now - grace, state__in=(State.TRIGGERED, State.ACKNOWLEDGED)
        ).values_list("id", "next_level", "active_token")[:500]
    )
    fired = sum(fire(i, level, token, source="auditor") == "fired" for i, level, token in overdue)
    return {"overdue_fired": fired, "escalated_on_receipts": escalate_on_receipts(now)}


def escalate_on_receipts(now) -> int:
    """When every delivery of the level that fired last has failed or bounced, the next
    level fires now instead of waiting out its delay."""
    waiting = Escalation.objects.filter(
        state=State.TRIGGERED, level_reached__gte=0, next_due_at__gt=now
    ).values_list("id", flat=True)[:500]
    moved = 0
    for escalation_id in waiting:
        last = (
            TimelineEntry.objects.filter(escalation_id=escalation_id, kind="level_fired")
            .order_by("-id")
            .first()
        )
        ids = (last.detail or {}).get("deliveries") if last else None
        if not ids:
            continue
        statuses = set(Delivery.objects.filter(id__in=ids).values_list("status", flat=True))
        if statuses and statuses <= set(_FAILED):
            moved += _bring_forward(escalation_id, now, ids)
    return moved


def _bring_forward(escalation_id: int, now, failed_ids: list[int]) -> int:
    with transaction.atomic():
        escalation = Escalation.objects.select_for_update().get(pk=escalation_id)
        if escalation.next_level is None or escalation.state != State.TRIGGERED:
            return 0
        TimelineEntry.objects.create(
            escalation=escalation,
            kind="receipts_failed",
            level=escalation.level_reached + 1,
            detail={"deliveries": failed_ids},
        )
        schedule(escalation, escalation.next_level, now)
        token = escalation.active_token
    # Fire it here; if the task sent on commit got there first, this finds a stale token.
    fire(escalation_id, escalation.next_level, str(token), source="receipts")
    return 1
