"""The last step: a per-channel task that sends a batch and records results promptly.

Before sending, each (tenant, provider) group passes its circuit breaker and its rate
limits; what may not go now goes back to `queued` for later, its attempt not counted.
"""

import logging
import math
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit import trail as audit
from apps.channels import breaker, ratelimit
from apps.channels.base import ChannelError, OutboundMessage
from apps.channels.registry import get_backend
from apps.channels.retry import backoff_seconds, max_attempts
from apps.common.copy import insert_rows
from apps.common.routing import DELIVER_TASK
from apps.common.rows import update_rows

from .. import extensions, metrics
from ..failover import fail_over
from ..models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus
from ..preferences import unsubscribe_url_for
from ..state import claimed_by, mark, refresh_statuses
from .providers import credentials_for, live_address, retire, retired_hashes

logger = logging.getLogger("apps.notifications.deliver")
# Waits up to this long go to the broker as a countdown; longer ones stay in the
# database for the releaser (a countdown past the Redis visibility timeout repeats).
BROKER_COUNTDOWN_LIMIT = 60.0
# Held-back deliveries due within one slot come back as one batch: spacing each at
# 1/rate apart would make one task per delivery, which is what the batches avoid.
HOLD_BACK_SLOT_SECONDS = 0.1


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


def message_for(delivery: Delivery, credentials: dict, address: str) -> OutboundMessage:
    notification = delivery.notification
    channel = notification.channels[delivery.channel_index]
    recipient = notification.recipients[delivery.recipient_index]
    return OutboundMessage(
        delivery_id=str(delivery.public_id),
        notification_id=str(notification.public_id),
        address=address,
        subject=delivery.subject,
        body=delivery.body,
        html_body=delivery.html_body,
        config=channel.get("config", {}),
        recipient={k: v for k, v in recipient.items() if k != "push_tokens"},
        priority=notification.priority,
        metadata=notification.metadata,
        credentials={
            **credentials,
            "signing_secret": notification.tenant.webhook_signing_secret,
        },
        unsubscribe_url=unsubscribe_url_for(delivery) if delivery.channel == "email" else "",
        actions=actions_for(delivery),
    )


def actions_for(delivery: Delivery) -> list[dict]:
    if not delivery.notification.has_escalation or extensions.escalations is None:
        return []
    links = extensions.escalations.render_extra(delivery).get("escalation", {})
    return [
        {"action": name, "code": links[f"{name}_code"], "url": links[f"{name}_url"]}
        for name in ("acknowledge", "resolve")
        if f"{name}_code" in links
    ]


def price_of(channel: str, units: int) -> Decimal | None:
    price = settings.DELIVERY_PRICES.get(channel)
    return None if price is None else Decimal(str(price)) * units


class Recorder:
    """Collects outcomes and writes them in small groups, each group one transaction:
    a crash repeats at most one group's sends, never what is already recorded. A group
    is written when it is full or its oldest outcome has waited DELIVERY_RECORD_SECONDS,
    so slow receivers do not leave sends unrecorded for long either."""

    def __init__(self, channel: str, token, deliveries: dict[str, Delivery], providers: dict):
        self.channel = channel
        self.token = token
        self.deliveries = deliveries
        self.providers = providers  # delivery id -> the provider key its breaker uses
        self.pending: list[tuple[Delivery, object, float, str]] = []
        self.oldest = 0.0  # time.monotonic() of the first pending outcome
        self.claim_renewed = time.monotonic()

    def add(self, message: OutboundMessage, outcome, seconds: float) -> None:
        delivery = self.deliveries[message.delivery_id]
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append((delivery, outcome, seconds, self.providers[delivery.id]))
        metrics.delivery_seconds.labels(channel=self.channel).observe(seconds)
        if (
            len(self.pending) >= settings.DELIVERY_RECORD_GROUP
            or time.monotonic() - self.oldest >= settings.DELIVERY_RECORD_SECONDS
        ):
            self.flush()
        self.keep_claim()

    def keep_claim(self) -> None:
        """A batch to slow receivers can outlast SENDING_TIMEOUT_SECONDS. Its rows still
        being sent get a fresh `claimed_at` every third of that, so the sweeper, which
        resumes only rows whose worker went quiet, never hands them to another worker
        (and the receiver a second copy) while this run still holds them."""
        if time.monotonic() - self.claim_renewed < settings.SENDING_TIMEOUT_SECONDS / 3:
            return
        self.claim_renewed = time.monotonic()
        Delivery.objects.filter(
            id__in=[d.id for d in self.deliveries.values()],
            status=DeliveryStatus.SENDING,
            claim_token=self.token,
        ).update(claimed_at=timezone.now())

    def flush(self) -> None:
        if not self.pending:
            return
        group, self.pending = self.pending, []
        now = timezone.now()
        with transaction.atomic():
            successes = [(d, o) for d, o, _, _ in group if not isinstance(o, ChannelError)]
            self._record_successes(successes, now)
            self._record_failures(
                [(d, o) for d, o, _, _ in group if isinstance(o, ChannelError)], now
            )
            self._retire_addresses(group)
            attempts = [self._attempt(d, o, s, now) for d, o, s, _ in group]
            insert_rows(DeliveryAttempt, attempts)
            self._audit(group, attempts)
        self._report_health(group)

    def _audit(self, group, attempts) -> None:
        """One entry per attempt, written with the group in one bulk insert per tenant."""
        by_tenant: dict[int, list] = defaultdict(list)
        for (delivery, _outcome, _s, _p), attempt in zip(group, attempts, strict=True):
            by_tenant[delivery.tenant_id].append(
                audit.Entry(
                    "delivery.attempted",
                    "delivery",
                    str(delivery.public_id),
                    result=attempt["outcome"],
                    duration_ms=attempt["duration_ms"],
                    metadata={
                        "channel": self.channel,
                        "attempt": attempt["number"],
                        "response_code": attempt["response_code"],
                    },
                )
            )
        for tenant_id, entries in by_tenant.items():
            audit.record_many(tenant_id, entries)

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
                {
                    d.id: {
                        "provider_message_id": (o.provider_message_id or "")[:255],
                        "cost": price_of(self.channel, o.units),
                    }
                    for d, o in chosen
                },
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
            elif delivery.attempts >= max_attempts(self.channel):
                failed[delivery.id] = f"gave up after {delivery.attempts} attempts: {error.message}"
            else:
                retry[delivery.id] = (
                    backoff_seconds(delivery.attempts, error.retry_after, self.channel),
                    error.message,
                )
        if failed:
            self._update_mine(
                {i: {"error": error} for i, error in failed.items()},
                status=DeliveryStatus.FAILED,
                updated_at=now,
            )
            fail_over(failed)
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

    def _retire_addresses(self, group) -> None:
        for delivery, outcome, _, _ in group:
            if outcome.retired_addresses:
                retire(
                    delivery.tenant_id,
                    self.channel,
                    outcome.retired_addresses,
                    getattr(outcome, "message", "reported dead by the provider")[:200],
                )

    def _report_health(self, group) -> None:
        """Feed the breakers (provider faults against successes) and slow a (tenant,
        channel) down after the provider said 429."""
        tallies: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
        throttled = set()
        for delivery, outcome, _, source in group:
            tally = tallies[(delivery.tenant_id, source)]
            if not isinstance(outcome, ChannelError):
                tally[0] += 1
            elif outcome.provider_fault:
                tally[1] += 1
            if isinstance(outcome, ChannelError) and outcome.rate_limited:
                throttled.add(delivery.tenant_id)
        for (tenant_id, source), (successes, faults) in tallies.items():
            state = breaker.record(tenant_id, source, successes, faults)
            if state == "open" and faults:
                logger.warning("circuit open for tenant %s, provider %s", tenant_id, source)
        for tenant_id in throttled:
            ratelimit.slow_down(tenant_id, self.channel)

    @staticmethod
    def _attempt(delivery, outcome, seconds, now) -> dict:
        if isinstance(outcome, ChannelError):
            kind = (
                AttemptOutcome.PERMANENT_ERROR
                if outcome.permanent
                else AttemptOutcome.TRANSIENT_ERROR
            )
            code, error = outcome.response_code, outcome.message
        else:
            kind, code, error = AttemptOutcome.SUCCESS, outcome.response_code, ""
        return {
            "delivery_id": delivery.id,
            "number": delivery.attempts,
            "started_at": now - timedelta(seconds=seconds),
            "duration_ms": int(seconds * 1000),
            "outcome": str(kind),
            "response_code": code,
            "error": error[:2000],
        }


def hold_back(channel: str, token, waits: dict[int, float], counter) -> None:
    """Return claimed deliveries to `queued` without counting the attempt, due after
    their wait; short waits go to the broker, long ones to the releaser."""
    now = timezone.now()
    by_wait: dict[float, list[int]] = defaultdict(list)
    for row_id, wait in waits.items():
        slot = math.ceil(wait / HOLD_BACK_SLOT_SECONDS) * HOLD_BACK_SLOT_SECONDS
        by_wait[round(slot, 3)].append(row_id)
    for wait, ids in by_wait.items():
        Delivery.objects.filter(
            id__in=ids, status=DeliveryStatus.SENDING, claim_token=token
        ).update(
            status=DeliveryStatus.QUEUED,
            claim_token=None,
            attempts=F("attempts") - 1,
            next_attempt_at=now + timedelta(seconds=wait),
            dispatched_at=now if wait <= BROKER_COUNTDOWN_LIMIT else None,
            updated_at=now,
        )
        if wait <= BROKER_COUNTDOWN_LIMIT:
            enqueue(channel, sorted(ids), countdown=wait)
        counter.labels(channel=channel).inc(len(ids))


def admit(channel: str, token, groups: dict[tuple, list[Delivery]]) -> list[Delivery]:
    """The deliveries that may be sent now; the rest are held back for later."""
    admitted = []
    for (tenant_id, source), members in groups.items():
        permission = breaker.acquire(tenant_id, source)
        if not permission.allowed:
            waits = {d.id: permission.wait_seconds + 0.1 for d in members}
            hold_back(channel, token, waits, metrics.circuit_waits)
            continue
        if permission.probe:  # a half-open circuit is probed with one message
            hold_back(channel, token, {d.id: 1.0 for d in members[1:]}, metrics.circuit_waits)
            members = members[:1]
        tenant_settings = members[0].notification.tenant.settings
        grant = ratelimit.take(tenant_id, channel, tenant_settings, len(members))
        if grant.granted < len(members):
            late = members[grant.granted :]
            # Spaced at the allowed rate, so they do not all come back at once.
            waits = {d.id: grant.wait_seconds + i / grant.rate for i, d in enumerate(late)}
            hold_back(channel, token, waits, metrics.rate_limit_waits)
        admitted.extend(members[: grant.granted])
    return admitted


def deliver(channel: str, ids: list[int]) -> int:
    now = timezone.now()
    token = mark(
        ids,
        [DeliveryStatus.QUEUED],
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        status=DeliveryStatus.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    rows = claimed_by(token, ids).order_by("id").for_sending()
    if not rows:
        return 0
    backend = get_backend(channel)
    credentials: dict[int, dict] = {}
    providers: dict[int, str] = {}
    groups: dict[tuple, list[Delivery]] = defaultdict(list)
    for delivery in rows:
        tenant = delivery.notification.tenant
        if tenant.id not in credentials:
            credentials[tenant.id] = credentials_for(tenant, channel)
        providers[delivery.id] = backend.provider_key(
            credentials[tenant.id]["source"], delivery.address
        )
        groups[(tenant.id, providers[delivery.id])].append(delivery)
    admitted = admit(channel, token, groups)
    retired = (
        retired_hashes({d.tenant_id for d in admitted}, channel)
        if backend.retires_addresses
        else set()
    )
    messages = [
        message_for(d, credentials[d.tenant_id], live_address(d, retired)) for d in admitted
    ]
    recorder = Recorder(channel, token, {str(d.public_id): d for d in admitted}, providers)
    for message, outcome, seconds in backend.send_batch(messages):
        recorder.add(message, outcome, seconds)
    recorder.flush()
    refresh_statuses({d.notification_id for d in admitted})
    return len(admitted)


@shared_task(name=DELIVER_TASK, acks_late=True)
def task(channel: str, ids: list[int]) -> int:
    return deliver(channel, ids)
