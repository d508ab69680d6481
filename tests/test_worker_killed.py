"""A worker killed with SIGKILL in the middle of a batch loses nothing: the sweeper
resumes its deliveries, and only sends cut off in flight may repeat."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from apps.escalation import services as escalation_services
from apps.escalation.models import TimelineEntry
from apps.notifications.models import Delivery
from apps.notifications.tasks import sweep
from notifications_project.devsinks import WebhookReceiver
from tests.conftest import accept_one, wait_until
from tests.test_escalation import fired_levels, mail_to
from tests.test_escalation import policy as escalation_policy
from tests.test_escalation import trigger as trigger_escalation

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
RECORD_GROUP = 5
CONCURRENCY = 4


def start_worker_process(tmp_path, name, **extra_env):
    env = {
        **extra_env,
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "WEBHOOK_CONCURRENCY": str(CONCURRENCY),
        "DELIVERY_RECORD_GROUP": str(RECORD_GROUP),
        "DELIVERY_BATCH_SIZE": "40",
    }
    env.update(extra_env)
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "notifications_project",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _database_url():
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def kill_hard(process):
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_sigkill_mid_batch_loses_nothing_and_repeats_only_in_flight(tenant, tmp_path, settings):
    settings.SENDING_TIMEOUT_SECONDS = 2
    settings.LOST_TASK_GRACE_SECONDS = 2
    receiver = WebhookReceiver(delay=0.02).start()
    first = start_worker_process(tmp_path, "doomed")
    second = None
    try:
        recipients = [{"user_id": f"u{i}"} for i in range(240)]
        accept_one(tenant, [{"type": "webhook", "config": {"url": receiver.url()}}], recipients)
        wait_until(lambda: len(receiver.requests) >= 60, timeout=60)
        recorded_before_kill = set(
            Delivery.objects.filter(status="delivered").values_list("public_id", flat=True)
        )
        kill_hard(first)
        assert Delivery.objects.exclude(status="delivered").exists(), "finished before kill"
        second = start_worker_process(tmp_path, "survivor")

        def all_delivered():
            sweep()
            return not Delivery.objects.exclude(status="delivered").exists()

        wait_until(all_delivered, timeout=90, interval=1.0)
        received = receiver.received_ids()
        assert set(received) == {
            str(p) for p in Delivery.objects.values_list("public_id", flat=True)
        }
        repeated = {i for i in received if received.count(i) > 1}
        assert not repeated & {str(p) for p in recorded_before_kill}
        assert len(repeated) <= RECORD_GROUP + CONCURRENCY
        # The killed batch was resumed by the sweeper, not lost with the worker.
        assert Delivery.objects.filter(attempts__gte=2).exists()
    finally:
        if first.poll() is None:
            kill_hard(first)
        if second is not None:
            kill_hard(second)
        receiver.stop()


# No in-process worker in this module: only the killed one and its replacement consume.
def test_worker_killed_while_a_level_is_pending_still_fires_it_once(api, tmp_path, smtp_sink):
    escalation_policy(api, second_delay=4)
    doomed = start_worker_process(tmp_path, "doomed", EMAIL_URL=smtp_sink.url)
    restarted = None
    try:
        escalation = trigger_escalation(api)
        wait_until(lambda: fired_levels(escalation) == [1], timeout=30)
        time.sleep(0.5)  # the worker now holds level 2's countdown message, unacknowledged
        kill_hard(doomed)
        restarted = start_worker_process(tmp_path, "restarted", EMAIL_URL=smtp_sink.url)
        wait_until(
            lambda: escalation_services.audit()["overdue_fired"] == 1, timeout=30, interval=0.5
        )
        assert escalation_services.audit()["overdue_fired"] == 0
        wait_until(lambda: mail_to(smtp_sink, "mgr1@example.com"), timeout=30)
        escalation.refresh_from_db()
        assert fired_levels(escalation) == [1, 2]
        sources = TimelineEntry.objects.filter(escalation=escalation, level=2).values_list(
            "detail__source", flat=True
        )
        assert list(sources) == ["auditor"]
        time.sleep(1)
        assert len(mail_to(smtp_sink, "mgr1@example.com")) == 1
    finally:
        for process in (doomed, restarted):
            if process is not None and process.poll() is None:
                kill_hard(process)


def test_metrics_from_worker_processes_reach_the_metrics_page(
    tenant, tmp_path, client, monkeypatch
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    receiver = WebhookReceiver().start()
    worker = start_worker_process(tmp_path, "metrics", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    try:
        recipients = [{"user_id": f"m{i}"} for i in range(3)]
        accept_one(tenant, [{"type": "webhook", "config": {"url": receiver.url()}}], recipients)
        wait_until(lambda: Delivery.objects.filter(status="delivered").count() == 3, timeout=30)
    finally:
        kill_hard(worker)
        receiver.stop()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    page = client.get("/metrics").content.decode()
    assert 'notification_deliveries_total{channel="webhook",status="delivered"} 3.0' in page
    assert "notification_queue_depth" in page
