"""Plain factory functions for tests: explicit arguments, sensible defaults, no surprises."""

import datetime as dt
import itertools
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from orders.models import Order
from orders.services import NewLine, order_receive
from retailers.models import (
    Listing,
    Mall,
    Market,
    Seller,
    SellerMembership,
    StaffRole,
    Stock,
    Store,
    StoreHours,
    StoreMembership,
    StoreStatus,
)

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"


def _n() -> int:
    return next(_counter)


def make_market(**fields) -> Market:
    n = _n()
    return Market.objects.create(
        **{"name": f"Market {n}", "slug": f"market-{n}", "time_zone": "America/Los_Angeles", **fields}
    )


def make_mall(*, market: Market | None = None, **fields) -> Mall:
    n = _n()
    defaults = {
        "name": f"Mall {n}",
        "slug": f"mall-{n}",
        "address": "3200 S Las Vegas Blvd, Las Vegas, NV 89109",
        "latitude": Decimal("36.127300"),
        "longitude": Decimal("-115.170700"),
        "time_zone": "America/Los_Angeles",
    }
    fields = {**defaults, **fields}
    # A mall made with its own market: the market in the mall's zone.
    return Mall.objects.create(market=market or make_market(time_zone=fields["time_zone"]), **fields)


def make_seller(**fields) -> Seller:
    n = _n()
    return Seller.objects.create(**{"marketplace_seller_id": f"SELLER{n}", "name": f"Seller {n}", **fields})


def make_store(
    *, seller: Seller | None = None, mall: Mall | None = None, around_the_clock: bool = True, **fields
) -> Store:
    n = _n()
    defaults = {"name": f"Store {n}", "unit": f"U-{n}", "status": StoreStatus.LIVE, "prep_sla_minutes": 30}
    store = Store.objects.create(seller=seller or make_seller(), mall=mall or make_mall(), **{**defaults, **fields})
    if around_the_clock:
        StoreHours.objects.bulk_create(
            StoreHours(store=store, weekday=day, opens_at=dt.time(0, 0), closes_at=dt.time(0, 0)) for day in range(7)
        )
    return store


def make_listing(*, seller: Seller, **fields) -> Listing:
    n = _n()
    defaults = {"seller_sku": f"SKU-{n}", "title": f"Item {n}", "category": "apparel", "weight_grams": 300}
    return Listing.objects.create(seller=seller, **{**defaults, **fields})


def make_stock(*, store: Store, listing: Listing, on_hand: int = 10, reserved: int = 0) -> Stock:
    return Stock.objects.create(store=store, listing=listing, on_hand=on_hand, reserved=reserved)


def make_user(username: str | None = None, **fields):
    user = get_user_model().objects.create_user(username=username or f"user{_n()}", password=PASSWORD, **fields)
    return user


def make_staff(*, store: Store, role: str = StaffRole.ASSOCIATE, user=None) -> StoreMembership:
    return StoreMembership.objects.create(user=user or make_user(), store=store, role=role)


def make_seller_manager(*, seller: Seller, user=None) -> SellerMembership:
    user = user or make_user(is_staff=True)
    return SellerMembership.objects.create(user=user, seller=seller)


def make_order(
    *,
    store: Store,
    lines: list[tuple[Listing, int]] | None = None,
    deliver_in: dt.timedelta = dt.timedelta(hours=3),
    placed_at: dt.datetime | None = None,
    **fields,
) -> Order:
    """A received order with stock reserved. Without lines, one line of a fresh listing
    stocked at the store."""
    if lines is None:
        listing = make_listing(seller=store.seller)
        make_stock(store=store, listing=listing, on_hand=10)
        lines = [(listing, 1)]
    placed_at = placed_at or timezone.now()
    n = _n()
    defaults = {
        "marketplace_order_id": f"113-{n:07d}-0000001",
        "customer_name": "Jamie D.",
        "address_line1": "3355 S Las Vegas Blvd",
        "city": "Las Vegas",
        "state": "NV",
        "postal_code": "89109",
    }
    return order_receive(
        store=store,
        placed_at=placed_at,
        deliver_by=placed_at + deliver_in,
        lines=[NewLine(listing=listing, quantity=quantity, unit_price_cents=1999) for listing, quantity in lines],
        **{**defaults, **fields},
    )
