from celery import shared_task
from django.db.models import F
from django.utils import timezone

from portal.models import WorkerHeartbeat


@shared_task(name="portal.record_heartbeat", bind=True, ignore_result=True)
def record_heartbeat(self, name: str = "beat") -> None:
    """Upserts the WorkerHeartbeat row `name`: proof that beat scheduled it and a worker ran it.
    Idempotent apart from the counter, which is the point."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        name=name,
        defaults={"worker": self.request.hostname or "", "last_seen_at": now, "beats": F("beats") + 1},
        create_defaults={"worker": self.request.hostname or "", "last_seen_at": now, "beats": 1},
    )
