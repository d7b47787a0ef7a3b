"""The Redis cache shares its database with the Celery broker: clearing it leaves the queues."""

import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import cache


@pytest.mark.redis
def test_cache_clear_deletes_only_the_caches_own_keys() -> None:
    raw = redis.Redis.from_url(settings.REDIS_URL)
    queue = f"{settings.REDIS_KEY_PREFIX}celery-test-{uuid.uuid4().hex}"
    raw.rpush(queue, b"a queued task")
    cache.set("rate:key-1", 7)
    cache.set("join:ip:203.0.113.9", 2)
    try:
        cache.clear()

        assert (cache.get("rate:key-1"), cache.get("join:ip:203.0.113.9")) == (None, None)
        assert raw.lrange(queue, 0, -1) == [b"a queued task"]
    finally:
        raw.delete(queue)
