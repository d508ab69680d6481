"""A circuit breaker per (tenant, provider), its state in Redis so every worker shares it.

closed: sends go out; provider faults in a row are counted. After
CIRCUIT_FAILURE_THRESHOLD of them the circuit opens for CIRCUIT_OPEN_SECONDS: nothing is
sent and deliveries wait. Then it is half-open: exactly one worker wins the probe (a
small batch); success closes it, a failure opens it again.

Written by hand rather than with pybreaker: pybreaker wraps one call at a time and its
Redis storage lets every process probe a half-open circuit at once; these transitions
are single Lua scripts, so they are atomic across workers.
"""

import time
from dataclasses import dataclass

from django.conf import settings

from .shared_state import shared_redis

KEY_TTL_SECONDS = 7 * 86400
PROBE_SECONDS = 30

# KEYS[1] the breaker hash; ARGV now. Returns {state, seconds until it may be probed}.
_ACQUIRE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[1])
if state == 'closed' then return {'closed', '0'} end
local until_ = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if now < until_ then return {state, tostring(until_ - now)} end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'until', tostring(now + tonumber(ARGV[2])))
return {'probe', '0'}
"""
# ARGV: ok (1/0), now, threshold, open seconds, ttl.
_RECORD = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[2])
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', '0', 'until', '0')
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if state == 'half_open' or failures >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'until', tostring(now + tonumber(ARGV[4])),
               'opened_at', tostring(now))
  end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return redis.call('HGET', KEYS[1], 'state') or 'closed'
"""


@dataclass(frozen=True)
class Permission:
    allowed: bool
    probe: bool = False
    wait_seconds: float = 0.0


def _key(tenant_id: int, provider: str) -> str:
    return f"breaker:{tenant_id}:{provider}"


def acquire(tenant_id: int, provider: str) -> Permission:
    """May this worker send to the provider now? A half-open circuit lets one probe in."""
    client = shared_redis()
    if client is None:
        return Permission(True)
    state, wait = client.eval(_ACQUIRE, 1, _key(tenant_id, provider), time.time(), PROBE_SECONDS)
    state = state.decode() if isinstance(state, bytes) else state
    if state in ("closed", "probe"):
        return Permission(True, probe=state == "probe")
    return Permission(False, wait_seconds=float(wait))


def record(tenant_id: int, provider: str, successes: int, faults: int) -> str | None:
    """Record a group's outcomes; a success after faults closes the circuit."""
    client = shared_redis()
    if client is None or not (successes or faults):
        return None
    key = _key(tenant_id, provider)
    args = (time.time(), settings.CIRCUIT_FAILURE_THRESHOLD, settings.CIRCUIT_OPEN_SECONDS)
    state = None
    for _ in range(faults):
        state = client.eval(_RECORD, 1, key, "0", *args, KEY_TTL_SECONDS)
    if successes:
        state = client.eval(_RECORD, 1, key, "1", *args, KEY_TTL_SECONDS)
    return state.decode() if isinstance(state, bytes) else state


def states() -> list[dict]:
    """Every breaker known to Redis, for the admin and the metrics gauge."""
    client = shared_redis()
    if client is None:
        return []
    found = []
    for key in client.scan_iter("breaker:*", count=500):
        _, tenant_id, provider = key.decode().split(":", 2)
        values = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        found.append(
            {
                "tenant_id": int(tenant_id),
                "provider": provider,
                "state": values.get("state", "closed"),
                "failures": int(values.get("failures", 0)),
                "until": float(values.get("until", 0)),
            }
        )
    return found


def reset(tenant_id: int, provider: str) -> None:
    client = shared_redis()
    if client is not None:
        client.delete(_key(tenant_id, provider))
