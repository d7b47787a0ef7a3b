"""Where a marketplace order goes (PRODUCT.md, "Order placement"): the mall given, or the nearest
mall whose radius covers the address; there a live store with every line in stock, fewest open
orders first. One function, `candidate_stores`, so the eligibility engine can plug in its
reasons (weight, size, hazmat, capacity) later."""

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import zipcodes
from django.db.models import Count

from orders.lifecycle import OPEN
from orders.models import Order
from retailers.eligibility import ListingFacts, codes_from_bits, listing_reason_bits
from retailers.models import Listing, Mall, ProgramLimits, Seller, Stock, Store, StoreStatus

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


def store_is_open(store: Store, local: dt.datetime) -> bool:
    """Opening hours in mall local time; a row whose closing time is at or before its opening
    time runs past midnight, equal times mean around the clock."""
    hours = {row.weekday: row for row in store.hours.all()}
    today = hours.get(local.weekday())
    now = local.time()
    if today is not None:
        if today.opens_at == today.closes_at:
            return True
        if today.opens_at < today.closes_at and today.opens_at <= now < today.closes_at:
            return True
        if today.closes_at < today.opens_at and now >= today.opens_at:
            return True
    yesterday = hours.get((local.weekday() - 1) % 7)
    return bool(yesterday is not None and yesterday.closes_at < yesterday.opens_at and now < yesterday.closes_at)


def before_cutoff(store: Store, local: dt.datetime) -> bool:
    # A cutoff at midnight would end the day before it starts: it means "no cutoff" (the
    # around-the-clock stores).
    if store.same_day_cutoff == dt.time(0, 0):
        return True
    return local.time() < store.same_day_cutoff


@dataclass
class Candidates:
    """The stores that can take the order, best first, and the reasons when there are none."""

    stores: list[Store] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)


def store_reasons(store: Store, lines: list[tuple[Listing, int]], stock: dict[tuple[int, int], int], now: dt.datetime):
    reasons = set()
    if store.status == StoreStatus.PAUSED:
        reasons.add("store_paused")
    elif store.status != StoreStatus.LIVE:
        reasons.add("no_live_store")
    local = store.local_now(now)
    if not store_is_open(store, local):
        reasons.add("store_closed")
    elif not before_cutoff(store, local):
        reasons.add("after_cutoff")
    if any(stock.get((store.pk, listing.pk), 0) < quantity for listing, quantity in lines):
        reasons.add("out_of_stock")
    return reasons


def candidate_stores(
    *,
    seller: Seller,
    malls: list[Mall],
    lines: list[tuple[Listing, int]],
    now: dt.datetime,
    reads: "IntakeReads | None" = None,
):
    """Stores of `seller` in the first of `malls` (nearest first) where the whole order can be
    fulfilled same-day, fewest open orders first; with every reason when no mall has one.
    `reads` (orders.api.reads) brings what this reads, already read in one round trip."""
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
    eligible_by_mall = []
    for mall in malls:
        in_mall = [store for store in stores if store.mall_id == mall.pk]
        if not in_mall:
            result.reasons.add("no_live_store")
        eligible = []
        for store in in_mall:
            reasons = store_reasons(store, lines, stock, now)
            if reasons:
                result.reasons |= reasons
            else:
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
