import random

from django.conf import settings


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with equal jitter, capped; a provider's Retry-After wins when
    longer. Celery's own helper works in whole seconds only, too coarse for the first
    retries, hence this small function."""
    base = settings.RETRY_BACKOFF_SECONDS * (2 ** max(attempt - 1, 0))
    capped = min(settings.RETRY_BACKOFF_MAX_SECONDS, base)
    delay = capped / 2 + random.uniform(0, capped / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.RETRY_BACKOFF_MAX_SECONDS))
    return delay
