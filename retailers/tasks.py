"""Thin Celery tasks that keep same-day eligibility current. Each is idempotent: a second run
finds nothing changed and writes nothing."""

from celery import shared_task
from django.utils import timezone

from retailers.eligibility_sql import eligibility_recompute, eligibility_sweep_run


@shared_task(name="retailers.eligibility_recompute", ignore_result=True)
def eligibility_recompute_task(
    listing_ids: list[int] | None = None, store_ids: list[int] | None = None, mall_ids: list[int] | None = None
) -> None:
    """Recomputes the rows affected by a change (ids that are gone are simply not found). The
    hooks no longer publish it (they write EligibilityRequest rows); kept for messages already
    queued and for operators."""
    if not (listing_ids or store_ids or mall_ids):
        return
    eligibility_recompute(listing_ids=listing_ids or [], store_ids=store_ids or [], mall_ids=mall_ids or [])


@shared_task(name="retailers.eligibility_requests_sweep", ignore_result=True)
def eligibility_requests_sweep() -> None:
    """Beat, every 2 s: recomputes what the hooks' outbox rows (EligibilityRequest) ask for and
    deletes them with the recompute's writes (retailers.eligibility_requests)."""
    from retailers.eligibility_requests import eligibility_requests_run

    eligibility_requests_run()


@shared_task(name="retailers.eligibility_sweep", ignore_result=True)
def eligibility_sweep() -> None:
    """Beat, every minute: recomputes the stores whose clock-driven state (open, cutoff, hourly
    capacity, today's date) changed since the last run; no countdowns are involved."""
    eligibility_sweep_run(now=timezone.now())


@shared_task(name="retailers.eligibility_recompute_all", ignore_result=True)
def eligibility_recompute_all() -> None:
    """Beat, nightly: the full recompute, a safety net for any change that missed its hook."""
    eligibility_recompute()


@shared_task(name="retailers.import_job_run", ignore_result=True)
def import_job_task(job_id: int) -> None:
    """Runs one bulk import job (a preview or an apply); a second delivery finds it claimed."""
    from retailers.importing import import_job_run

    import_job_run(job_id=job_id)


@shared_task(name="retailers.training_orders_sweep", ignore_result=True)
def training_orders_sweep() -> None:
    """Beat, every 15 seconds: sends the demo driver for ready training orders, delivers the
    picked-up ones and takes complete onboarding stores live where the market says so."""
    from retailers.onboarding import training_orders_sweep as sweep

    sweep()
