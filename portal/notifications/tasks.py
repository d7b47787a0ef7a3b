from celery import shared_task

from portal.notifications import services


@shared_task(name="notifications.send_due")
def send_due() -> int:
    """The beat sweeper: claims due outbox rows and sends them; safe to run in many workers."""
    return services.send_due()
