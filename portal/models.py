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
