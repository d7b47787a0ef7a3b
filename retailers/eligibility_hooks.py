"""What services call after a change that can move same-day eligibility. Each hook queues the
recompute of the affected rows once the surrounding transaction commits, so the worker reads
committed data and a rolled-back change queues nothing."""

from collections.abc import Iterable

from django.db import transaction


def _enqueue(*, listing_ids: Iterable[int] = (), store_ids: Iterable[int] = (), mall_ids: Iterable[int] = ()) -> None:
    from retailers.tasks import eligibility_recompute_task

    kwargs = {
        "listing_ids": sorted(set(listing_ids)),
        "store_ids": sorted(set(store_ids)),
        "mall_ids": sorted(set(mall_ids)),
    }
    if any(kwargs.values()):
        transaction.on_commit(lambda: eligibility_recompute_task.delay(**kwargs))


def eligibility_after_stock_change(*, listing_ids: Iterable[int]) -> None:
    """Stock on hand or reserved changed (edit, import, order intake, cancel, reject)."""
    _enqueue(listing_ids=listing_ids)


def eligibility_after_store_change(*, store_ids: Iterable[int]) -> None:
    """Hours, cutoff, capacity, pause/resume or onboarding status changed, or an order took a
    slot of the store's hourly capacity."""
    _enqueue(store_ids=store_ids)


def eligibility_after_order_change(*, store_id: int, listing_ids: Iterable[int]) -> None:
    """An order was received, cancelled or rejected: stock reservations moved and the store's
    hourly capacity may have filled or freed up (the recompute widens itself to the whole store
    when the store's state changed)."""
    _enqueue(listing_ids=listing_ids)


def eligibility_after_driver_supply_change(*, market_ids: Iterable[int]) -> None:
    """Drivers went online or offline, or were (de)activated, in these markets."""
    from retailers.models import Mall

    market_ids = list(market_ids)
    if market_ids:
        _enqueue(mall_ids=Mall.objects.filter(market_id__in=market_ids).values_list("pk", flat=True))
