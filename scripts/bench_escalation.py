"""`make bench-escalation`: how late escalation levels fire while the workers are busy.

Starts the stack (web, 2 workers, beat) on PostgreSQL and Redis, triggers escalations
whose second level is due a few seconds later, and meanwhile keeps the workers busy with
bulk webhook traffic. Lateness is each level-2 firing time (its timeline entry) minus
its due time (the trigger plus the level's delay), read from the database afterwards.
"""

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench import bench_stack
from scripts.stack import free_port

LEVEL_TWO_DELAY = 5


def background_load(client, receiver_url, stop: threading.Event, counter: list[int]) -> None:
    body = {
        "content": "load {{ recipient.user_id }}",
        "channels": [{"type": "webhook", "config": {"url": receiver_url}}],
    }
    batch = 0
    while not stop.is_set():
        items = [{**body, "recipients": [{"user_id": f"l-{batch}-{i}"}]} for i in range(500)]
        client.post("/api/v1/notifications/bulk/", json={"notifications": items}, timeout=120)
        counter[0] += 500
        batch += 1


def lateness(db_url: str) -> list[float]:
    query = """
        SELECT EXTRACT(EPOCH FROM fired.at - (trig.at + make_interval(secs => %s)))
        FROM escalation_timelineentry fired
        JOIN escalation_timelineentry trig
          ON trig.escalation_id = fired.escalation_id AND trig.kind = 'triggered'
        WHERE fired.kind = 'level_fired' AND fired.level = 2
    """
    with psycopg.connect(db_url) as conn:
        return [float(row[0]) for row in conn.execute(query, (LEVEL_TWO_DELAY,))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--escalations", type=int, default=200)
    parser.add_argument("--per-second", type=float, default=10.0)
    parser.add_argument(
        "--dedicated-worker",
        action="store_true",
        help="also run a worker for the escalation queue alone (the Procfile's `escalation`)",
    )
    args = parser.parse_args()
    db_url, stack, smtp, receiver = bench_stack("bench-escalation")
    port = free_port(8200)
    stop, loaded = threading.Event(), [0]
    try:
        stack.manage("migrate", "--noinput")
        key = stack.manage("create_tenant", "bench", "--name", "Bench").strip().splitlines()[-1]
        stack.start_web(port, workers=2)
        stack.start_worker(concurrency=2)
        if args.dedicated_worker:
            stack.start_worker(concurrency=1, name="escalation", queues="escalation")
        stack.start_beat()
        stack.wait_ready(f"http://127.0.0.1:{port}")
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )
        for user, role in (("dev", "developer"), ("mgr", "manager")):
            client.post(
                "/api/v1/contacts/",
                json={"user_id": user, "role": role, "email": f"{user}@example.com"},
            ).raise_for_status()
        levels = [
            {"delay_seconds": 0, "target_roles": ["developer"], "channels": ["email"]},
            {"delay_seconds": LEVEL_TWO_DELAY, "target_roles": ["manager"], "channels": ["email"]},
        ]
        client.post(
            "/api/v1/escalation-policies/", json={"name": "bench", "levels": levels}
        ).raise_for_status()
        load = threading.Thread(
            target=background_load,
            args=(
                httpx.Client(base_url=client.base_url, headers=client.headers),
                receiver.url(),
                stop,
                loaded,
            ),
        )
        load.start()
        for i in tqdm(range(args.escalations), desc="escalations"):
            client.post(
                "/api/v1/notifications/",
                json={
                    "content": f"alert {i}",
                    "recipients": [],
                    "channels": [{"type": "email"}],
                    "escalation": {"policy": "bench"},
                },
            ).raise_for_status()
            time.sleep(1 / args.per_second)
        deadline = time.monotonic() + LEVEL_TWO_DELAY + 120
        with tqdm(total=args.escalations, desc="level 2 fired") as bar:
            while time.monotonic() < deadline:
                bar.n = len(lateness(db_url))
                bar.refresh()
                if bar.n >= args.escalations:
                    break
                time.sleep(1)
        stop.set()
        load.join()
        values = sorted(lateness(db_url))
        p50 = statistics.median(values)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(
            f"\nescalation level 2 lateness over {len(values)} of {args.escalations} escalations, "
            f"{args.per_second}/s, with {loaded[0]} webhook notifications of load"
            f"{', dedicated escalation worker' if args.dedicated_worker else ''}: "
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms"
        )
    finally:
        stop.set()
        stack.stop()
        receiver.stop()
        smtp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
