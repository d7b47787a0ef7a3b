"""What services call after a change that can move same-day eligibility. Each hook writes an
EligibilityRequest row per affected listing, store or mall IN the caller's transaction (an
outbox: a commit always leaves the request, a rollback never does, and a process that dies after
the commit loses nothing); the beat sweeper (retailers.eligibility_requests) recomputes them
within seconds. No broker publish on the caller's path.

One row per (kind, object): a burst of changes to one listing is one row. A conflict UPDATEs
the row rather than doing nothing, so the writer holds the row's lock until it commits: the
sweeper's SKIP LOCKED passes over it until then, and never deletes a request it read before the
change that merged into it was committed (with DO NOTHING, a sweep claiming the row between the
writer's insert and its commit would recompute stale data and drop the request)."""

from collections.abc import Iterable

from django.utils import timezone


def _enqueue(*, listing_ids: Iterable[int] = (), store_ids: Iterable[int] = (), mall_ids: Iterable[int] = ()) -> None:
    from retailers.models import EligibilityRequest
    from retailers.models import EligibilityRequestKind as Kind

    now = timezone.now()
    # Sorted, kind by kind: every writer locks conflicting rows in the same order.
    rows = [
        EligibilityRequest(kind=kind, object_id=object_id, created_at=now)
        for kind, ids in ((Kind.LISTING, listing_ids), (Kind.STORE, store_ids), (Kind.MALL, mall_ids))
        for object_id in sorted(set(ids))
    ]
    if rows:
        EligibilityRequest.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["kind", "object_id"], update_fields=["created_at"]
        )


def eligibility_after_stock_change(*, listing_ids: Iterable[int]) -> None:
    """Stock on hand or reserved changed (edit, import, order intake, cancel, reject)."""
    _enqueue(listing_ids=listing_ids)


def eligibility_after_listing_change(*, listing_ids: Iterable[int]) -> None:
    """A listing was added, or its weight, size class, hazmat flag or category changed (the
    program limits it is checked against)."""
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
    """Drivers went online or offline, or were (de)activated, or a shift under way was scheduled
    or cancelled, in these markets."""
    from retailers.models import Mall

    market_ids = list(market_ids)
    if market_ids:
        _enqueue(mall_ids=Mall.objects.filter(market_id__in=market_ids).values_list("pk", flat=True))


def eligibility_after_program_limits_change() -> None:
    """The program limits (weight, size classes, categories) changed: every listing in every mall
    is checked again, one request per mall."""
    from retailers.models import Mall

    _enqueue(mall_ids=Mall.objects.values_list("pk", flat=True))
