"""Where a marketplace order goes (PRODUCT.md, "Order placement"): the mall given, or the nearest
mall whose radius covers the address; there a live store with every line in stock, fewest open
orders first. Whether a store may take the order same-day is decided by the eligibility
engine's rules (retailers.eligibility: status, hours, cutoff, hourly capacity, program limits,
driver supply), not a copy of them: the `not-eligible` reasons are the eligibility feed's codes."""

import datetime as dt
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import zipcodes
from django.db.models import Count

from orders.lifecycle import OPEN
from orders.models import Order
from retailers.eligibility import (
    CANDIDATE_STATUSES,
    ListingFacts,
    codes_from_bits,
    listing_reason_bits,
    store_reason_bits,
)
from retailers.eligibility_sql import markets_with_driver_supply, orders_last_hour_by_store, store_facts
from retailers.models import Listing, Mall, ProgramLimits, Seller, Stock, Store

if TYPE_CHECKING:
    from orders.api.reads import IntakeReads

EARTH_RADIUS_MILES = 3958.8


def distance_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(a))


def zip_centroid(postal_code: str) -> tuple[float, float] | None:
    """The ZIP code's centroid from the data the `zipcodes` package ships (no network)."""
    try:
        matches = zipcodes.matching(postal_code[:5])
    except (TypeError, ValueError):
        return None
    for match in matches:
        if match.get("lat") and match.get("long"):
            return float(match["lat"]), float(match["long"])
    return None


def covers(mall: Mall, lat: float, lon: float) -> bool:
    distance = distance_miles(float(mall.latitude), float(mall.longitude), lat, lon)
    return Decimal(str(distance)) <= mall.delivery_radius_miles


def covering_malls(lat: float, lon: float, malls: list[Mall] | None = None) -> list[Mall]:
    """Every mall (of `malls`, already read, or in the database) whose delivery radius covers
    the point, nearest first."""
    covering = [mall for mall in (Mall.objects.all() if malls is None else malls) if covers(mall, lat, lon)]
    return sorted(covering, key=lambda mall: distance_miles(float(mall.latitude), float(mall.longitude), lat, lon))


@dataclass
class Candidates:
    """The stores that can take the order, best first, and the reasons when there are none."""

    stores: list[Store] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)


def store_reasons(
    store: Store,
    lines: list[tuple[Listing, int]],
    stock: dict[tuple[int, int], int],
    now: dt.datetime,
    *,
    orders_last_hour: int = 0,
    hours: Mapping[int, tuple[dt.time, dt.time]] | None = None,
) -> set[str]:
    """Why `store` cannot take these lines now: the eligibility engine's own store rules
    (retailers.eligibility.store_reason_bits: paused, closed, after the cutoff, at hourly
    capacity, in the mall's time zone), `no_live_store` for a store that is neither live nor
    paused, and `out_of_stock` when a line's quantity is not available there. Empty: it can.
    `hours` ({weekday: (opens_at, closes_at)}): the store's, when already read; else its own."""
    if store.status not in CANDIDATE_STATUSES:
        return {"no_live_store"}
    facts = store_facts(store, orders_last_hour=orders_last_hour, hours=hours)
    reasons = set(codes_from_bits(store_reason_bits(facts, now=now)))
    if any(stock.get((store.pk, listing.pk), 0) < quantity for listing, quantity in lines):
        reasons.add("out_of_stock")
    return reasons


def orders_last_hour(*, stores: list[Store], now: dt.datetime, reads: object = None) -> dict[int, int]:
    """Each store's orders of the last hour (its hourly capacity), counted as the eligibility
    engine counts them; from `reads` when the intake's reads brought them
    (an `orders_last_hour` attribute), else one query."""
    counts = getattr(reads, "orders_last_hour", None)
    if counts is not None:
        return counts
    return orders_last_hour_by_store(store_ids=[store.pk for store in stores], now=now) if stores else {}


def markets_with_drivers(*, now: dt.datetime, reads: object = None) -> set[int]:
    """The markets with driver supply now, asked where the eligibility engine asks it; from
    `reads` when the intake's reads brought them (a `driver_markets` attribute)."""
    markets = getattr(reads, "driver_markets", None)
    return set(markets) if markets is not None else markets_with_driver_supply(now=now)


def candidate_stores(
    *,
    seller: Seller,
    malls: list[Mall],
    lines: list[tuple[Listing, int]],
    now: dt.datetime,
    reads: "IntakeReads | None" = None,
    driver_markets: Collection[int] | None = None,
):
    """Stores of `seller` in the first of `malls` (nearest first) where the whole order can be
    fulfilled same-day, fewest open orders first; with every reason when no mall has one.
    `reads` (orders.api.reads) brings what this reads, already read in one round trip.
    `driver_markets` (see markets_with_drivers): the intake passes the markets with driver
    supply, so a mall whose market has no driver online answers `no_driver_supply`; None leaves
    driver supply out (a question about the stores alone)."""
    result = Candidates()
    # The program's limits on the listings themselves (issue 5's rules): no store can fix these.
    limits = (ProgramLimits.current() if reads is None else reads.limits).facts()
    for listing, _quantity in lines:
        facts = ListingFacts(
            weight_grams=listing.weight_grams,
            size_class=listing.size_class,
            hazmat=listing.hazmat,
            category=listing.category,
        )
        result.reasons.update(codes_from_bits(listing_reason_bits(facts, limits)))
    listing_blocked = bool(result.reasons)
    if reads is not None:
        mall_ids = {mall.pk for mall in malls}
        stores = [store for store in reads.stores if store.mall_id in mall_ids]
        stock = reads.stock
        hours = reads.hours
    else:
        stores = list(
            Store.objects.filter(seller=seller, mall__in=malls)
            .select_related("mall")
            .prefetch_related("hours")
            .order_by("pk")
        )
        stock = {
            (row.store_id, row.listing_id): row.on_hand - row.reserved
            for row in Stock.objects.filter(store__in=stores, listing__in=[listing for listing, _ in lines])
        }
        hours = None  # prefetched with each store, read by store_facts
    eligible_by_mall = []
    capacity_used = orders_last_hour(stores=stores, now=now, reads=reads)
    for mall in malls:
        # As the eligibility engine judges a listing in a mall: only live and paused stores
        # are candidates, their reasons count when none passes, and a market without drivers
        # online blocks every store of the mall.
        candidates = [store for store in stores if store.mall_id == mall.pk and store.status in CANDIDATE_STATUSES]
        if not candidates:
            result.reasons.add("no_live_store")
        supplied = driver_markets is None or mall.market_id in driver_markets
        if not supplied:
            result.reasons.add("no_driver_supply")
        eligible = []
        for store in candidates:
            reasons = store_reasons(
                store,
                lines,
                stock,
                now,
                orders_last_hour=capacity_used.get(store.pk, 0),
                hours=None if hours is None else hours.get(store.pk, {}),
            )
            if reasons:
                result.reasons |= reasons
            elif supplied:
                eligible.append(store)
        eligible_by_mall.append(eligible)
    contested = [store.pk for eligible in eligible_by_mall if len(eligible) > 1 for store in eligible]
    # Open orders are counted only where there is a choice to make.
    if reads is not None:
        open_orders = reads.open_orders
    else:
        open_orders = (
            dict(
                Order.objects.filter(store_id__in=contested, status__in=OPEN)
                .values_list("store_id")
                .annotate(count=Count("pk"))
                .order_by()
            )
            if contested
            else {}
        )
    if listing_blocked:
        return result
    for eligible in eligible_by_mall:
        result.stores.extend(sorted(eligible, key=lambda store: (open_orders.get(store.pk, 0), store.pk)))
    if result.stores:
        result.reasons.clear()
    return result
