"""Counts in fixed windows, kept in the cache (Redis in production, the local-memory cache in the
embedded default): the /join/ and password-reset limits, a delivery PIN's wrong tries."""

from django.core.cache import cache


def count_in_window(key: str, *, seconds: int) -> int:
    """Counts one event under `key` in a window of `seconds` that starts with the first; returns
    the count including this one. add+incr are atomic in Redis and locmem."""
    if cache.add(key, 1, timeout=seconds):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window ran out between add and incr
        cache.set(key, 1, timeout=seconds)
        return 1
