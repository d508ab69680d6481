"""Sending a batch over a few long-lived lanes (threads) that share one work queue.

Receivers are latency-bound, so a batch goes out concurrently. One future per message
cost as much CPU as the HTTP request itself (measured: 560 µs against 300 µs per
request on the benchmark machine), so each lane takes messages from a shared queue
until it is empty: a slow receiver holds up one lane, never the others.
"""

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from apps.common.tracing import current_context, span_in

from .base import ChannelError, Outcome

logger = logging.getLogger("apps.channels")
_executors: dict[tuple[int, str, int], ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _executor(name: str, lanes: int) -> ThreadPoolExecutor:
    # Per process: a prefork child must not inherit its parent's threads.
    key = (os.getpid(), name, lanes)
    with _lock:
        if key not in _executors:
            _executors[key] = ThreadPoolExecutor(lanes, thread_name_prefix=name)
        return _executors[key]


def send_concurrently(
    name: str, messages: Sequence, send_one: Callable, lanes: int
) -> Iterator[Outcome]:
    """Yield `(message, outcome, seconds)` for every message as each one completes."""
    if not messages:
        return
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for message in messages:
        todo.put(message)
    results: queue.SimpleQueue = queue.SimpleQueue()
    executor = _executor(name, lanes)
    parent = current_context()  # so each provider call is a span of this task's trace
    for _ in range(min(lanes, len(messages))):
        executor.submit(_lane, todo, results, send_one, parent)
    for _ in range(len(messages)):
        yield results.get()


def _lane(todo: queue.SimpleQueue, results: queue.SimpleQueue, send_one: Callable, parent) -> None:
    while True:
        try:
            message = todo.get_nowait()
        except queue.Empty:
            return
        started = time.monotonic()
        try:
            with span_in(parent, "provider.send", delivery_id=message.delivery_id):
                outcome = send_one(message)
        except Exception as exc:  # a bug must not leave the caller waiting forever
            logger.exception("sending %s failed unexpectedly", getattr(message, "delivery_id", "?"))
            outcome = ChannelError(f"internal error: {exc.__class__.__name__}", permanent=False)
        results.put((message, outcome, time.monotonic() - started))
