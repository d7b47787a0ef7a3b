"""The session engine (SESSION_ENGINE = "portal.sessions"): Django's cached_db sessions, stored in
portal.Session, whose rows carry the logged-in user's id (Django's "Extending database-backed
session engines"). See docs/decisions/0008-sessions-carry-the-user-id.md."""

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.core.cache import caches
from django.db import transaction


def user_id_of(data: dict) -> int | None:
    """The id auth's login() put in the session data; None for an anonymous session."""
    try:
        return int(data[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None


class SessionStore(CachedDBStore):
    # Not cached_db's prefix: a cache entry this engine reads was written by this engine, which
    # wrote the row first, so every live session has a row end_sessions_of can find.
    cache_key_prefix = "portal.sessions"

    @classmethod
    def get_model_class(cls):
        from portal.models import Session

        return Session

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = user_id_of(data)
        return session

    async def acreate_model_instance(self, data):
        session = await super().acreate_model_instance(data)
        session.user_id = user_id_of(data)
        return session

    @classmethod
    def end_all_of(cls, user_id: int, *, keep=None) -> int:
        """Ends every session of one person: their rows in one indexed query and one DELETE, their
        cache entries in one call, and the cache entries once more after the transaction commits
        (until then a request of theirs can still read a row and put it back in the cache, where
        it would stay logged in without a row). `keep(data)`, given, is asked about each
        session's decoded data: those it accepts stay. Returns how many sessions it ended."""
        model = cls.get_model_class()
        rows = model.objects.filter(user_id=user_id)
        if keep is None:
            keys = list(rows.values_list("session_key", flat=True))
        else:
            decode = cls().decode
            keys = [key for key, data in rows.values_list("session_key", "session_data") if not keep(decode(data))]
        if not keys:
            return 0
        cache = caches[settings.SESSION_CACHE_ALIAS]
        cache_keys = [cls.cache_key_prefix + key for key in keys]
        model.objects.filter(session_key__in=keys).delete()
        cache.delete_many(cache_keys)
        transaction.on_commit(lambda: cache.delete_many(cache_keys), robust=True)
        return len(keys)
