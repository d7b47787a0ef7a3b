"""Per-key request limit of the contract: 50 a second with bursts of 100, counted in the cache
(Redis in production, so every web process shares the count)."""

import time

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

RATE_PER_SECOND = 50
BURST = 100
# A window of BURST / RATE seconds that admits BURST requests: 50 a second on average, and a
# burst of up to 100 at once. One atomic INCR per request.
WINDOW_SECONDS = BURST // RATE_PER_SECOND


def retry_after_if_limited(key_id: str, *, now: float | None = None) -> int | None:
    """Counts one request; returns the seconds to wait when the key is over its limit."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    cache_key = f"api-rate:{key_id}:{window}"
    count = _count(cache_key, timeout=WINDOW_SECONDS + 1)
    if count <= BURST:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))


def _count(cache_key: str, *, timeout: int) -> int:
    """Adds one to the window's counter and returns it: one round trip on Redis."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(cache_key)
        # SET NX (the window's first request) and INCR in one pipeline, not add() then incr().
        pipeline = backend._cache.get_client(key, write=True).pipeline(transaction=False)
        pipeline.set(key, 0, ex=timeout, nx=True)
        pipeline.incr(key)
        return pipeline.execute()[1]
    # add() is a no-op when the key exists; incr() is atomic in the local cache.
    cache.add(cache_key, 0, timeout=timeout)
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=timeout)
        return 1
