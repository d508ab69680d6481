"""Circuit breakers and rate limits, with their state in the real Redis."""

import multiprocessing
import time

import pytest
from django.conf import settings as django_settings

from apps.channels import breaker, ratelimit
from apps.notifications.models import Delivery, DeliveryAttempt
from apps.notifications.pipeline import STAGES
from apps.notifications.pipeline.deliver import deliver
from notifications_project.devsinks import WebhookReceiver
from tests.breaker_probe import try_to_probe
from tests.conftest import accept_one, wait_until

PROVIDER = "sms:env"


@pytest.fixture
def fresh_breaker(settings):
    settings.CIRCUIT_FAILURE_THRESHOLD = 3
    settings.CIRCUIT_OPEN_SECONDS = 0.5
    tenant_id = int(time.time() * 1000) % 1_000_000_000
    breaker.reset(tenant_id, PROVIDER)
    yield tenant_id
    breaker.reset(tenant_id, PROVIDER)


def test_breaker_opens_lets_one_process_probe_and_closes(fresh_breaker):
    tenant_id = fresh_breaker
    assert breaker.record(tenant_id, PROVIDER, successes=0, faults=2) == "closed"
    assert breaker.acquire(tenant_id, PROVIDER).allowed
    assert breaker.record(tenant_id, PROVIDER, successes=0, faults=1) == "open"
    refused = breaker.acquire(tenant_id, PROVIDER)
    assert not refused.allowed and 0 < refused.wait_seconds <= 0.5

    # Once the open period ends, four processes race: exactly one gets the probe.
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = time.time() + 2.0
    workers = [
        context.Process(
            target=try_to_probe,
            args=(django_settings.REDIS_URL, tenant_id, PROVIDER, start, results),
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    probes = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert sorted(probes) == [False, False, False, True]
    assert not breaker.acquire(tenant_id, PROVIDER).allowed  # half-open: one probe only

    assert breaker.record(tenant_id, PROVIDER, successes=1, faults=0) == "closed"
    assert breaker.acquire(tenant_id, PROVIDER) == breaker.Permission(True)
    [state] = [s for s in breaker.states() if s["tenant_id"] == tenant_id]
    assert state["state"] == "closed" and state["failures"] == 0


def test_failed_probe_opens_the_circuit_again(fresh_breaker):
    tenant_id = fresh_breaker
    breaker.record(tenant_id, PROVIDER, successes=0, faults=3)
    time.sleep(0.6)
    assert breaker.acquire(tenant_id, PROVIDER).probe
    assert breaker.record(tenant_id, PROVIDER, successes=0, faults=1) == "open"
    assert not breaker.acquire(tenant_id, PROVIDER).allowed


@pytest.mark.django_db(transaction=True)
def test_open_circuit_holds_deliveries_back_without_spending_attempts(tenant, receiver, settings):
    settings.CIRCUIT_FAILURE_THRESHOLD = 2
    settings.CIRCUIT_OPEN_SECONDS = 30
    receiver.script("/down", 503, 503)
    url = receiver.url("/down")
    first = accept_one(tenant, [{"type": "webhook", "config": {"url": url}}], [{"user_id": "a"}])
    ids = list(Delivery.objects.filter(notification=first).values_list("id", flat=True))
    for stage in STAGES:
        ids = stage(ids)
    deliver("webhook", ids)  # one 503 ...
    Delivery.objects.filter(id__in=ids).update(next_attempt_at=None)
    deliver("webhook", ids)  # ... and another: the circuit opens
    assert len(receiver.requests) == 2

    second = accept_one(tenant, [{"type": "webhook", "config": {"url": url}}], [{"user_id": "b"}])
    held = list(Delivery.objects.filter(notification=second).values_list("id", flat=True))
    for stage in STAGES:
        held = stage(held)
    assert deliver("webhook", held) == 0
    delivery = Delivery.objects.get(id=held[0])
    assert (delivery.status, delivery.attempts) == ("queued", 0)
    assert delivery.next_attempt_at is not None
    assert len(receiver.requests) == 2  # nothing reached the broken receiver
    assert not DeliveryAttempt.objects.filter(delivery=delivery).exists()

    # Another receiver of the same tenant has its own circuit.
    healthy = WebhookReceiver().start()
    try:
        other = accept_one(
            tenant, [{"type": "webhook", "config": {"url": healthy.url()}}], [{"user_id": "c"}]
        )
        ok = list(Delivery.objects.filter(notification=other).values_list("id", flat=True))
        for stage in STAGES:
            ok = stage(ok)
        assert deliver("webhook", ok) == 1
    finally:
        healthy.stop()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_rate_limit_holds_a_burst_to_the_configured_rate(celery_worker, tenant, receiver):
    tenant.settings = {"rate_limits": {"channels": {"webhook": 5}}}
    tenant.save()
    recipients = [{"user_id": f"u{i}"} for i in range(15)]
    notification = accept_one(
        tenant, [{"type": "webhook", "config": {"url": receiver.url("/limited")}}], recipients
    )
    wait_until(
        lambda: (
            Delivery.objects.filter(notification=notification, status="delivered").count() == 15
        ),
        timeout=30,
    )
    arrivals = sorted(r["at"] for r in receiver.requests)
    assert len(arrivals) == 15
    # A bucket of 5 allows 5 at once, then 5 a second: 15 need at least 2 seconds,
    # and no second-long window ever holds more than 5 + 5.
    assert arrivals[-1] - arrivals[0] >= 1.8
    for i, start in enumerate(arrivals):
        assert sum(1 for t in arrivals[i:] if t - start < 1.0) <= 10
    attempts = Delivery.objects.filter(notification=notification).values_list("attempts", flat=True)
    assert set(attempts) == {1}  # waiting for the limit is not a failed attempt


def test_rates_come_from_the_tenant_then_the_environment(settings):
    settings.RATE_LIMIT_PER_SECOND = 100
    settings.RATE_LIMIT_CHANNEL_PER_SECOND = {"sms": 10}
    assert ratelimit.rates_for({}, "sms") == (100, 10)
    assert ratelimit.rates_for({}, "slack") == (100, 100)
    own = {"rate_limits": {"per_second": 50, "channels": {"sms": 2}}}
    assert ratelimit.rates_for(own, "sms") == (50, 2)


def test_a_providers_429_lowers_the_rate_for_a_while(settings):
    settings.RATE_LIMIT_BACKOFF_FACTOR = 0.5
    tenant_id = int(time.time() * 1000) % 1_000_000_000 + 7
    own = {"rate_limits": {"channels": {"sms": 10}}}
    assert ratelimit.take(tenant_id, "sms", own, 20).granted == 10
    ratelimit.slow_down(tenant_id, "sms")
    slowed = ratelimit.take(tenant_id + 1, "sms", own, 20)
    assert slowed.granted == 10  # another tenant is not slowed
    penalised = ratelimit.take(tenant_id, "sms", own, 1)
    assert penalised.rate == 5.0


@pytest.mark.django_db(transaction=True)
def test_deliveries_over_the_rate_come_back_in_batches(tenant, receiver, monkeypatch):
    from apps.channels.shared_state import shared_redis
    from apps.notifications.pipeline import deliver as deliver_module
    from apps.notifications.pipeline import dispatch as dispatch_module

    # This module's in-process worker must not take the batch before the test does.
    monkeypatch.setattr(dispatch_module, "enqueue", lambda *args, **kwargs: None)

    shared_redis().delete(f"rate:{tenant.id}", f"rate:{tenant.id}:webhook")
    tenant.settings = {"rate_limits": {"channels": {"webhook": 50}}}
    tenant.save()
    recipients = [{"user_id": f"u{i}"} for i in range(80)]
    notification = accept_one(
        tenant, [{"type": "webhook", "config": {"url": receiver.url()}}], recipients
    )
    ids = list(Delivery.objects.filter(notification=notification).values_list("id", flat=True))
    for stage in STAGES:
        ids = stage(ids)
    requeued = []
    monkeypatch.setattr(
        deliver_module,
        "enqueue",
        lambda channel, ids, countdown=None: requeued.append((ids, countdown)),
    )

    assert deliver("webhook", ids) == 50
    # 30 held back at 50/s spread over 0.6 s: a few slot-sized batches, not 30 tasks.
    assert sorted(i for batch, _ in requeued for i in batch) == sorted(
        Delivery.objects.filter(notification=notification, status="queued").values_list(
            "id", flat=True
        )
    )
    assert sum(len(batch) for batch, _ in requeued) == 30
    assert len(requeued) <= 7
    assert all(abs(c * 10 - round(c * 10)) < 1e-6 for _, c in requeued)
    assert len(receiver.requests) == 50
