"""Per-key request limit of the contract: 50 requests a second, bursts of 100.

A token bucket per key: it holds at most BURST tokens, refills at RATE_PER_SECOND tokens a
second, and each request takes one; a request that finds less than one token is refused with the
whole seconds until one is back (at least 1).

- With Redis (production: every web process shares the bucket) the whole step runs as one Lua
  script on the server, so it is atomic and costs one round trip. The script reads the clock with
  `TIME` on the Redis server: the clocks of the web machines never enter into it.
- Without Redis (the embedded default, one web process) the bucket lives in the local cache,
  and a lock in this process makes the read-modify-write atomic. That is only correct while one
  process serves the API, which is what the embedded default runs; anything with several web
  processes has REDIS_URL set.
"""

import math
import threading
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.commands.core import Script

RATE_PER_SECOND = 50
BURST = 100
# A bucket untouched for this long is full again: its key can go.
IDLE_EXPIRY_SECONDS = math.ceil(BURST / RATE_PER_SECOND) + 1

# KEYS[1] the bucket; ARGV: rate, capacity, expiry (s), and optionally "now" in seconds (tests
# drive the script with their own clock; in production it is left out and TIME decides).
# Returns {1, "0"} when the request is admitted, {0, "<seconds until one token>"} when not.
# Lua numbers returned to Redis become integers, so the fraction travels as a string.
BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
local admitted = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  admitted = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', at))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {admitted, string.format('%.6f', wait)}
"""


def _whole_seconds(wait: float) -> int:
    """Retry-After: the whole seconds until a token is back, never 0."""
    return max(1, math.ceil(wait))


def _bucket_key(key_id: str) -> str:
    return f"api-rate:{key_id}"


def retry_after_if_limited(key_id: str) -> int | None:
    """Takes one token from the key's bucket; returns None when the request may go on, else the
    seconds to wait (the Retry-After value)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return redis_take(backend, key_id)
    return local_take(backend, key_id)


# --- Redis: one script, one round trip -----------------------------------------------------------

_script: Script | None = None


_clients: dict = {}


def _client(backend: RedisCache, key: str):
    """A redis client on the cache's write pool, made once per pool: Django's get_client()
    builds a new client object (with its table of response callbacks) on every call, which cost
    more than the script's round trip. Clients are thread-safe; the pool owns the connections."""
    pool = backend._cache._get_connection_pool(write=True)
    client = _clients.get(pool)
    if client is None:
        client = _clients.setdefault(pool, backend._cache.get_client(key, write=True))
    return client


def redis_take(backend: RedisCache, key_id: str, *, now: float | None = None) -> int | None:
    """The Redis bucket. `now` (seconds) replaces the server's clock: for tests only."""
    global _script  # noqa: PLW0603 - one registered script per process
    key = backend.make_and_validate_key(_bucket_key(key_id))
    client = _client(backend, key)
    if _script is None:
        # register_script keeps the script's SHA: EVALSHA each time, EVAL only on a server that
        # does not know it yet (after a restart or SCRIPT FLUSH).
        _script = client.register_script(BUCKET_LUA)
    args = [RATE_PER_SECOND, BURST, IDLE_EXPIRY_SECONDS] + ([] if now is None else [f"{now:.6f}"])
    admitted, wait = _script(keys=[key], args=args, client=client)
    if int(admitted) == 1:
        return None
    return _whole_seconds(float(wait))


# --- The embedded default: the local cache, under a lock of this process -------------------------

_local_lock = threading.Lock()


def local_take(backend, key_id: str) -> int | None:
    """The same bucket in the local (per-process) cache; the lock makes get-then-set atomic
    between the threads of this one process. Time is the process's clock."""
    key = _bucket_key(key_id)
    with _local_lock:
        now = time.time()
        tokens, at = backend.get(key) or (float(BURST), now)
        if now > at:
            tokens = min(float(BURST), tokens + (now - at) * RATE_PER_SECOND)
            at = now
        if tokens >= 1:
            backend.set(key, (tokens - 1, at), timeout=IDLE_EXPIRY_SECONDS)
            return None
        backend.set(key, (tokens, at), timeout=IDLE_EXPIRY_SECONDS)
        return _whole_seconds((1 - tokens) / RATE_PER_SECOND)
