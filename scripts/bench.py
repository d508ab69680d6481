"""`make bench`: throughput and latency of the whole stack on PostgreSQL and Redis, with
local SMTP and webhook sinks. Prints one line per channel."""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import psycopg
import redis
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from notifications_project.devsinks import SinkProcess
from scripts.stack import ROOT, Stack, free_port

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/notify_bench"
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"


def fresh_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def bench_stack(name: str):
    """A fresh benchmark database and Redis database, local SMTP and HTTP sinks in their
    own processes, and a Stack configured for them: (db_url, stack, smtp, receiver)."""
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    broker = os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER)
    fresh_database(db_url)
    redis.Redis.from_url(broker).flushdb()
    smtp, receiver = SinkProcess("smtp").start(), SinkProcess("http").start()
    data_dir = ROOT / "var" / name
    env = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": broker,
        "SECRET_KEY": "bench",
        "EMAIL_URL": smtp.smtp_url,
        "LOG_LEVEL": "WARNING",
        "WEBHOOK_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "DATA_DIR": str(data_dir),
    }
    return db_url, Stack(env, data_dir / "logs"), smtp, receiver


def single_post_latencies(client, body, count) -> list[float]:
    latencies = []
    for i in tqdm(range(count), desc="single POSTs", leave=False):
        item = {**body, "recipients": [{**body["recipients"][0], "user_id": f"single-{i}"}]}
        started = time.perf_counter()
        client.post("/api/v1/notifications/", json=item).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def bulk_accept(client, body, batches, per_batch, tag) -> float:
    started = time.perf_counter()
    for b in tqdm(range(batches), desc=f"bulk {tag}", leave=False):
        items = [
            {**body, "recipients": [{**body["recipients"][0], "user_id": f"{tag}-{b}-{i}"}]}
            for i in range(per_batch)
        ]
        client.post(
            "/api/v1/notifications/bulk/", json={"notifications": items}, timeout=120
        ).raise_for_status()
    return time.perf_counter() - started


def wait_all_done(db_url, channel, expected, timeout=600.0) -> tuple[int, int]:
    query = (
        "SELECT count(*) FILTER (WHERE status IN ('sent','delivered')), "
        "count(*) FILTER (WHERE status IN ('failed','suppressed','cancelled')) "
        "FROM notifications_delivery WHERE channel = %s"
    )
    deadline = time.monotonic() + timeout
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        tqdm(total=expected, desc=f"{channel} deliveries", leave=False) as bar,
    ):
        while True:
            done, bad = conn.execute(query, (channel,)).fetchone()
            bar.n = done + bad
            bar.refresh()
            if done + bad >= expected or time.monotonic() > deadline:
                return done, bad
            time.sleep(0.2)


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (Linux): steadier than
    wall-clock rates for comparing builds, as it does not care which process waited."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def bench_channel(client, db_url, channel, body, args) -> str:
    latencies = single_post_latencies(client, body, args.singles)
    wait_all_done(db_url, channel, args.singles)
    # Table statistics as autovacuum keeps them on a running system; a database created
    # seconds ago has none, and the planner then scans whole tables for IN lists.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    total = args.batches * args.per_batch
    started, cpu_before = time.perf_counter(), busy_cpu_seconds()
    accept_seconds = bulk_accept(client, body, args.batches, args.per_batch, channel)
    _done, bad = wait_all_done(db_url, channel, args.singles + total)
    elapsed = time.perf_counter() - started
    cpu_ms = (busy_cpu_seconds() - cpu_before) * 1000 / total
    quantiles = statistics.quantiles(latencies, n=100)
    return (
        f"{channel:8} accepted {total / accept_seconds:8.0f}/s via /bulk/  "
        f"delivered {total / elapsed:7.0f}/s end to end ({total} in {elapsed:.1f}s, "
        f"{bad} not delivered, {cpu_ms:.2f} CPU-ms each)  single POST "
        f"p50 {statistics.median(latencies):.1f} ms p99 {quantiles[98]:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20, help="bulk requests per channel")
    parser.add_argument("--per-batch", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=200, help="single POSTs for latency")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--channels", default="webhook,email")
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=100_000.0,
        help="the tenant's sends/s per channel: the default policy (1,000/s for "
        "webhooks) would cap the capacity being measured",
    )
    args = parser.parse_args()
    db_url, stack, smtp, receiver = bench_stack("bench")
    stack.env["RATE_LIMIT_PER_SECOND"] = str(args.rate_limit)
    stack.env["RATE_LIMIT_CHANNEL_PER_SECOND"] = ",".join(
        f"{channel}={args.rate_limit}" for channel in ("webhook", "email")
    )
    port = free_port(8100)
    try:
        stack.manage("migrate", "--noinput")
        key = stack.manage("create_tenant", "bench", "--name", "Bench").strip().splitlines()[-1]
        stack.start_web(port, workers=2)
        stack.start_worker(concurrency=args.workers)
        stack.wait_ready(f"http://127.0.0.1:{port}")
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )
        bodies = {
            "webhook": {
                "title": "Bench {{ n }}",
                "content": "Hello {{ recipient.user_id }}",
                "recipients": [{"user_id": "x"}],
                "metadata": {"n": 1},
                "channels": [{"type": "webhook", "config": {"url": receiver.url()}}],
            },
            "email": {
                "title": "Bench",
                "content": "Hello {{ recipient.user_id }}",
                "recipients": [{"user_id": "x", "email": "bench@example.com"}],
                "channels": [{"type": "email"}],
            },
        }
        lines = [
            bench_channel(client, db_url, c, bodies[c], args) for c in args.channels.split(",")
        ]
        print(
            f"\n{args.workers} worker processes, {os.cpu_count()} cores, "
            f"{args.batches}x{args.per_batch} notifications per channel:"
        )
        print("\n".join(lines))
    finally:
        stack.stop()
        smtp.stop()
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
