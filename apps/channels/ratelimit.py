"""Token buckets in Redis, shared by all workers: one per tenant and one per (tenant,
channel). A batch takes what the buckets allow now and the rest waits; nothing is
dropped. A provider's 429 lowers that (tenant, channel)'s rate for a while (adaptive).

Hand-written as one Lua script because the libraries on PyPI for Django/DRF throttle
requests (yes/no per call) and cannot grant "n of these m now, the rest in t seconds"
atomically across processes.
"""

import time
from dataclasses import dataclass

from django.conf import settings

from .shared_state import shared_redis

# KEYS: bucket hashes. ARGV: now, wanted, then (rate, capacity) per key.
# Grants min(wanted, tokens in every bucket); returns {granted, seconds until the next}.
_TAKE = """
local now = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local grant = wanted
local tokens = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[1 + i * 2])
  local capacity = tonumber(ARGV[2 + i * 2])
  local values = redis.call('HMGET', key, 'tokens', 'at')
  local level = tonumber(values[1]) or capacity
  local at = tonumber(values[2]) or now
  level = math.min(capacity, level + math.max(0, now - at) * rate)
  tokens[i] = level
  grant = math.min(grant, math.floor(level))
end
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[1 + i * 2])
  local capacity = tonumber(ARGV[2 + i * 2])
  local left = tokens[i] - grant
  redis.call('HSET', key, 'tokens', tostring(left), 'at', tostring(now))
  redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
  if grant < wanted then
    wait = math.max(wait, (1 - left) / rate)
  end
end
return {grant, tostring(wait)}
"""


@dataclass(frozen=True)
class Grant:
    granted: int
    wait_seconds: float
    # The rate the rest may follow at (sends per second), to space them out.
    rate: float = 0.0


def rates_for(tenant_settings: dict, channel: str) -> tuple[float, float]:
    """(per tenant, per tenant and channel) sends per second."""
    limits = tenant_settings.get("rate_limits") or {}
    tenant_rate = float(limits.get("per_second", settings.RATE_LIMIT_PER_SECOND))
    channel_default = settings.RATE_LIMIT_CHANNEL_PER_SECOND.get(channel, tenant_rate)
    channel_rate = float((limits.get("channels") or {}).get(channel, channel_default))
    return tenant_rate, channel_rate


def take(tenant_id: int, channel: str, tenant_settings: dict, wanted: int) -> Grant:
    client = shared_redis()
    if client is None or wanted <= 0:
        return Grant(wanted, 0.0, float("inf"))
    tenant_rate, channel_rate = rates_for(tenant_settings, channel)
    factor = client.get(_penalty_key(tenant_id, channel))
    if factor is not None:
        channel_rate *= float(factor)
    # Capacity of one second's worth: a burst goes out at once up to the rate, no more.
    keys = [f"rate:{tenant_id}", f"rate:{tenant_id}:{channel}"]
    args = [time.time(), wanted]
    for rate in (tenant_rate, channel_rate):
        args += [rate, max(1.0, rate)]
    granted, wait = client.eval(_TAKE, len(keys), *keys, *args)
    return Grant(int(granted), float(wait), min(tenant_rate, channel_rate))


def slow_down(tenant_id: int, channel: str) -> None:
    """A provider said 429: run this (tenant, channel) at a fraction of its rate."""
    client = shared_redis()
    if client is not None:
        client.set(
            _penalty_key(tenant_id, channel),
            settings.RATE_LIMIT_BACKOFF_FACTOR,
            ex=int(settings.RATE_LIMIT_BACKOFF_SECONDS),
        )


def _penalty_key(tenant_id: int, channel: str) -> str:
    return f"rate-penalty:{tenant_id}:{channel}"
