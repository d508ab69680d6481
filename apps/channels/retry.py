"""The retry policy: per channel, exponential backoff with equal jitter, a cap, and a
provider's Retry-After honoured. CHANNEL_MAX_ATTEMPTS / CHANNEL_BACKOFF_SECONDS override
the global DELIVERY_MAX_ATTEMPTS / RETRY_BACKOFF_SECONDS for one channel."""

import random

from django.conf import settings


def max_attempts(channel: str) -> int:
    return int(settings.CHANNEL_MAX_ATTEMPTS.get(channel, settings.DELIVERY_MAX_ATTEMPTS))


def backoff_seconds(attempt: int, retry_after: float | None = None, channel: str = "") -> float:
    """Celery's own helper works in whole seconds only, too coarse for the first
    retries, and retries here are rows in the database, not task retries; hence this
    small function."""
    first = settings.CHANNEL_BACKOFF_SECONDS.get(channel, settings.RETRY_BACKOFF_SECONDS)
    base = first * (2 ** max(attempt - 1, 0))
    capped = min(settings.RETRY_BACKOFF_MAX_SECONDS, base)
    delay = capped / 2 + random.uniform(0, capped / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.RETRY_BACKOFF_MAX_SECONDS))
    return delay
