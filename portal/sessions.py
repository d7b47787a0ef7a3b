"""The session engine (SESSION_ENGINE = "portal.sessions"): Django's cached_db sessions, stored in
portal.Session, whose rows carry the logged-in user's id (Django's "Extending database-backed
session engines"). See docs/decisions/0008-sessions-carry-the-user-id.md."""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore


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
