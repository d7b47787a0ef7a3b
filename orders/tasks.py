"""Thin Celery tasks of the orders app."""

from celery import shared_task

from orders.outbox import deliver_due_webhooks, sequence_events


@shared_task(name="orders.deliver_webhooks", ignore_result=True)
def deliver_webhooks() -> int:
    """Numbers committed feed events and sends every due webhook delivery. Idempotent."""
    return deliver_due_webhooks()


@shared_task(name="orders.sequence_events", ignore_result=True)
def sequence_feed_events() -> int:
    return sequence_events()
