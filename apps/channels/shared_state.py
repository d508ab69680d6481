"""The Redis connection for state all workers share (circuit breakers, rate limits).

Without REDIS_URL (the single-machine demo) there is no shared store, and breakers and
rate limits are off: a per-process substitute would look like protection across
processes and not be.
"""

import functools

import redis
from django.conf import settings


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


def shared_redis() -> redis.Redis | None:
    return _client(settings.REDIS_URL) if settings.REDIS_URL else None
