"""Writes to same-day stock from the store's stock page and the importers."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal.errors import ActionRefused
from retailers.eligibility_hooks import eligibility_after_stock_change
from retailers.models import Listing, Stock, Store, StoreEvent

MAX_ON_HAND = 100_000


def units(count: int) -> str:
    """ "1 unit", "2 units": for the messages about stock."""
    return f"{count} unit" if count == 1 else f"{count} units"


@transaction.atomic
def stock_set_on_hand(
    *, store: Store, listing: Listing, on_hand: int, acting_user: AbstractBaseUser | None, was: int | None = None
) -> Stock:
    """Sets the units on the shelf of one listing at one store (never below what open orders
    have reserved). `was`: the count the person saw when they typed theirs; when someone else
    has saved another count since, nothing is written (code `conflict`) rather than their count
    being silently replaced. None (the importers): no such check.

    Side effects: Stock row created or updated; one `stock.changed` store event; the listing's
    eligibility recompute queued after commit.
    """
    if listing.seller_id != store.seller_id:
        raise ActionRefused(f"{listing.seller_sku} is not sold by {store.name}.", code="validation")
    if not 0 <= on_hand <= MAX_ON_HAND:
        raise ActionRefused(f"On hand must be between 0 and {MAX_ON_HAND:,}.", code="validation")
    stock, _ = Stock.objects.select_for_update().get_or_create(store=store, listing=listing)
    if was is not None and stock.on_hand not in (was, on_hand):
        raise ActionRefused(
            f"Someone else set {listing.seller_sku} to {stock.on_hand} on hand while you were typing: nothing was "
            "saved. Count again, then save.",
            code="conflict",
        )
    if on_hand < stock.reserved:
        raise ActionRefused(
            f"{units(stock.reserved)} of {listing.seller_sku} {'is' if stock.reserved == 1 else 'are'} "
            "reserved by open orders: on hand cannot go below that.",
            code="validation",
        )
    before = stock.on_hand
    if before == on_hand:
        return stock
    stock.on_hand = on_hand
    stock.save(update_fields=["on_hand", "updated_at"])
    StoreEvent.objects.create(
        store=store,
        type="stock.changed",
        actor=acting_user if acting_user is not None and acting_user.is_authenticated else None,
        actor_label=(acting_user.get_full_name() or acting_user.get_username()) if acting_user else "system",
        at=timezone.now(),
        data={"sku": listing.seller_sku, "from": before, "to": on_hand},
    )
    eligibility_after_stock_change(listing_ids=[listing.pk])
    return stock
