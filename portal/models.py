from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per beat schedule entry, upserted by `portal.record_heartbeat` every time a worker
    runs it: operators see in the admin when the background processes last worked."""

    name = models.CharField(max_length=64, unique=True)
    worker = models.CharField(max_length=255, blank=True, help_text="Celery node that last ran it.")
    last_seen_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} at {self.last_seen_at:%Y-%m-%d %H:%M:%S} UTC"


class Session(AbstractBaseSession):
    """django_session with the logged-in user's id beside the data (portal.sessions fills it on
    every save), so "log this person out everywhere" is one indexed query instead of decoding
    every session. No foreign key: a session outlives nothing it points at, and deleting a user
    must not wait on their sessions."""

    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    @classmethod
    def get_session_store_class(cls):
        from portal.sessions import SessionStore

        return SessionStore
