"""The cache backend for Redis."""

import re

from django.core.cache.backends.redis import RedisCache


class PrefixedRedisCache(RedisCache):
    """Django's RedisCache, except that `clear()` deletes only this cache's keys (those under its
    KEY_PREFIX) instead of running FLUSHDB: the Celery broker keeps its queues in the same Redis
    database, and clearing the cache must never drop queued tasks."""

    def clear(self) -> bool:
        client = self._cache.get_client(None, write=True)
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", self.key_prefix) + ":*"
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        return True
