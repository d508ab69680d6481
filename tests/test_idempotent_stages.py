"""Stages claim work with conditional updates: running one twice, or two at once, never
sends again what is recorded as sent. No worker here: the test drives the stages."""

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from apps.notifications.models import Delivery
from apps.notifications.pipeline import STAGES
from apps.notifications.pipeline.deliver import deliver
from apps.notifications.tasks import release_held_deliveries
from tests.conftest import accept_one

pytestmark = pytest.mark.django_db(transaction=True)


def accept_webhooks(tenant, url, count):
    recipients = [{"user_id": f"u{i}"} for i in range(count)]
    notification = accept_one(tenant, [{"type": "webhook", "config": {"url": url}}], recipients)
    return list(Delivery.objects.filter(notification=notification).values_list("id", flat=True))


def run_stages_by_hand(ids):
    for stage in STAGES:
        ids = stage(ids)
    return ids


def test_running_every_stage_twice_sends_once(tenant, receiver):
    ids = accept_webhooks(tenant, receiver.url(), 30)
    dispatched = run_stages_by_hand(ids)
    assert sorted(dispatched) == sorted(ids)
    assert run_stages_by_hand(ids) == []  # nothing pending any more
    assert deliver("webhook", ids) == 30
    assert deliver("webhook", ids) == 0
    assert sorted(receiver.received_ids()) == sorted(
        str(p) for p in Delivery.objects.filter(id__in=ids).values_list("public_id", flat=True)
    )
    assert set(Delivery.objects.filter(id__in=ids).values_list("status", flat=True)) == {
        "delivered"
    }


def test_two_runners_of_the_same_batch_send_each_delivery_once(tenant, receiver):
    ids = accept_webhooks(tenant, receiver.url(), 60)
    run_stages_by_hand(ids)
    sent_counts = []
    barrier = threading.Barrier(2)

    def runner():
        barrier.wait()
        sent_counts.append(deliver_and_close(ids))

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sent_counts) == 60
    received = receiver.received_ids()
    errors = set(Delivery.objects.exclude(status="delivered").values_list("error", flat=True))
    assert len(received) == len(set(received)) == 60, errors


def test_long_channel_delay_is_held_in_the_database_not_the_broker(tenant, receiver):
    config = {"url": receiver.url(), "delay_minutes": 5}
    notification = accept_one(tenant, [{"type": "webhook", "config": config}], [{"user_id": "u"}])
    ids = list(notification.deliveries.values_list("id", flat=True))
    run_stages_by_hand(ids)
    delivery = Delivery.objects.get(id=ids[0])
    assert delivery.status == "queued" and delivery.dispatched_at is None
    assert (delivery.next_attempt_at - delivery.created_at).total_seconds() >= 299
    assert deliver("webhook", ids) == 0  # not due: nothing is claimed or sent
    assert receiver.requests == []
    Delivery.objects.filter(id__in=ids).update(next_attempt_at=timezone.now())
    assert release_held_deliveries(timezone.now()) == 1
    assert Delivery.objects.get(id=ids[0]).dispatched_at is not None
    assert deliver("webhook", ids) == 1
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("channel", ["webhook", "email"])
def test_the_pipelines_queries_do_not_grow_with_the_batch(
    channel, tenant, receiver, smtp_sink, settings
):
    """Deferred columns and related rows are loaded with the batch: touching one of
    them per delivery would show up here as one more query per delivery."""
    from django.test.utils import CaptureQueriesContext

    settings.DELIVERY_RECORD_GROUP = 1000
    settings.DELIVERY_RECORD_SECONDS = 60
    config = {
        "webhook": {"url": receiver.url()},
        "email": {"track_opens": True, "track_clicks": True},
    }[channel]
    counts = []
    for size in (3, 30):
        recipients = [
            {"user_id": f"batch{size}-{i}", "email": f"r{size}-{i}@example.com"}
            for i in range(size)
        ]
        notification = accept_one(tenant, [{"type": channel, "config": config}], recipients)
        ids = list(Delivery.objects.filter(notification=notification).values_list("id", flat=True))
        with CaptureQueriesContext(connection) as queries:
            assert deliver(channel, run_stages_by_hand(ids)) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.parametrize(("record_seconds", "groups"), [(0.0, [1, 1, 1, 1]), (60.0, [4])])
def test_outcomes_are_recorded_when_the_group_fills_or_grows_old(
    tenant, receiver, settings, monkeypatch, record_seconds, groups
):
    from apps.notifications.pipeline.deliver import Recorder

    settings.DELIVERY_RECORD_GROUP = 1000
    settings.DELIVERY_RECORD_SECONDS = record_seconds
    written = []
    original = Recorder.flush

    def counting_flush(self):
        if self.pending:
            written.append(len(self.pending))
        original(self)

    monkeypatch.setattr(Recorder, "flush", counting_flush)
    ids = run_stages_by_hand(accept_webhooks(tenant, receiver.url(), 4))
    assert deliver("webhook", ids) == 4
    assert written == groups
    assert set(Delivery.objects.filter(id__in=ids).values_list("status", flat=True)) == {
        "delivered"
    }


def test_a_batch_outlasting_the_sending_timeout_is_not_resumed_under_it(
    tenant, settings, monkeypatch
):
    """Slow receivers make a long batch; the sweeper must not take its rows back (and
    send them again through another worker) while it is still running."""
    from apps.notifications import tasks
    from notifications_project.devsinks import WebhookReceiver

    monkeypatch.setattr(tasks, "enqueue_by_channel", lambda ids: None)
    settings.SENDING_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_CONCURRENCY = 1
    settings.DELIVERY_RECORD_GROUP = 1000
    settings.DELIVERY_RECORD_SECONDS = 60
    slow = WebhookReceiver(delay=0.25).start()
    try:
        ids = run_stages_by_hand(accept_webhooks(tenant, slow.url(), 10))
        sent = []
        runner = threading.Thread(target=lambda: sent.append(deliver_and_close(ids)))
        runner.start()
        resumed = 0
        while runner.is_alive():
            resumed += tasks.resume_stuck_sending(timezone.now())
            time.sleep(0.1)
        runner.join()
    finally:
        slow.stop()
    assert sent == [10] and resumed == 0
    assert set(Delivery.objects.filter(id__in=ids).values_list("status", flat=True)) == {
        "delivered"
    }


def deliver_and_close(ids):
    try:
        return deliver("webhook", ids)
    finally:
        connection.close()
