"""The set-based recompute: the same tests run on SQLite and, with DATABASE_URL, on PostgreSQL."""

import datetime as dt
import random
from collections import defaultdict

import pytest

from portal.tests.factories import make_listing, make_mall, make_market, make_order, make_seller, make_stock, make_store
from retailers import eligibility as rules
from retailers.eligibility_sql import eligibility_recompute, orders_last_hour_by_store, store_facts
from retailers.models import (
    EligibilityResult,
    EligibilityStoreState,
    Listing,
    ProgramLimits,
    Stock,
    Store,
    StoreHours,
    StoreStatus,
)

pytestmark = pytest.mark.django_db
UTC = dt.UTC
# Wednesday 2026-11-18 12:00 in Las Vegas.
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=UTC)


def rows() -> list[tuple]:
    return [
        (r.listing_id, r.mall_id, r.eligible, r.reasons, r.hint, r.eligible_until)
        for r in EligibilityResult.objects.order_by("listing_id", "mall_id")
    ]


def expected_rows(*, now: dt.datetime, driver_markets: set[int]) -> list[tuple]:
    """The same results computed listing by listing with the pure rules."""
    limits = ProgramLimits.current().facts()
    stores = list(Store.objects.select_related("mall").prefetch_related("hours").order_by("pk"))
    counts = orders_last_hour_by_store(store_ids=[s.pk for s in stores], now=now)
    available = {(s.store_id, s.listing_id): s.on_hand - s.reserved for s in Stock.objects.all()}
    stores_by_seller_mall = defaultdict(list)
    for store in stores:
        stores_by_seller_mall[(store.seller_id, store.mall_id)].append(store)
    result = []
    for listing in Listing.objects.order_by("pk"):
        facts = rules.ListingFacts(listing.weight_grams, listing.size_class, listing.hazmat, listing.category)
        malls = sorted({mall_id for seller_id, mall_id in stores_by_seller_mall if seller_id == listing.seller_id})
        for mall_id in malls:
            mall_stores = stores_by_seller_mall[(listing.seller_id, mall_id)]
            offers = [
                rules.Offer(store_facts(s, orders_last_hour=counts.get(s.pk, 0)), available.get((s.pk, listing.pk), 0))
                for s in mall_stores
            ]
            verdict = rules.evaluate(
                listing=facts,
                offers=offers,
                limits=limits,
                driver_supply=mall_stores[0].mall.market_id in driver_markets,
                now=now,
            )
            until = verdict.eligible_until.astimezone(UTC) if verdict.eligible_until else None
            result.append((listing.pk, mall_id, verdict.eligible, list(verdict.reasons), verdict.hint, until))
    return result


def random_dataset(rng: random.Random) -> set[int]:
    ProgramLimits.objects.create(
        max_weight_grams=5000, allowed_size_classes="small,medium", allowed_categories="apparel,shoes,toys"
    )
    zones = ["America/Los_Angeles", "America/Phoenix", "America/New_York"]
    markets = [make_market() for _ in range(2)]
    malls = [make_mall(market=markets[i % 2], time_zone=zones[i]) for i in range(3)]
    sellers = [make_seller() for _ in range(3)]
    statuses = [StoreStatus.LIVE] * 4 + [StoreStatus.PAUSED, StoreStatus.ONBOARDING, StoreStatus.SUSPENDED]
    stores = []
    for seller in sellers:
        for mall in rng.sample(malls, rng.randint(1, 3)):
            for _ in range(rng.randint(1, 2)):
                status = rng.choice(statuses)
                store = make_store(
                    seller=seller,
                    mall=mall,
                    around_the_clock=False,
                    status=status,
                    paused_reason="Inventory count" if status == StoreStatus.PAUSED else "",
                    same_day_cutoff=dt.time(rng.choice([11, 13, 15, 17, 21]), rng.choice([0, 30])),
                    hourly_capacity=rng.choice([1, 2, 50]),
                )
                for day in range(7):
                    kind = rng.choice(["regular", "regular", "late", "around", "closed"])
                    if kind == "regular":
                        span = (dt.time(rng.choice([8, 10, 12])), dt.time(rng.choice([16, 20, 22])))
                    elif kind == "late":
                        span = (dt.time(rng.choice([14, 18])), dt.time(rng.choice([1, 2, 3])))
                    elif kind == "around":
                        span = (dt.time(0), dt.time(0))
                    else:
                        continue
                    StoreHours.objects.create(store=store, weekday=day, opens_at=span[0], closes_at=span[1])
                stores.append(store)
    for seller in sellers:
        seller_stores = [s for s in stores if s.seller_id == seller.pk]
        for _ in range(12):
            listing = make_listing(
                seller=seller,
                weight_grams=rng.choice([200, 900, 5000, 5001, 20000]),
                size_class=rng.choice(["small", "medium", "large", "oversize"]),
                hazmat=rng.random() < 0.15,
                category=rng.choice(["apparel", "shoes", "toys", "knives"]),
            )
            for store in seller_stores:
                if rng.random() < 0.8:
                    on_hand = rng.choice([0, 1, 2, 5])
                    make_stock(store=store, listing=listing, on_hand=on_hand, reserved=rng.randint(0, on_hand))
    live = [s for s in stores if s.status == StoreStatus.LIVE]
    for store in rng.sample(live, min(3, len(live))):
        for minutes in (20, 40):
            make_order(store=store, placed_at=NOON_LA - dt.timedelta(minutes=minutes))
    return {markets[0].pk}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_recompute_matches_pure_rules_on_a_random_dataset(seed):
    rng = random.Random(seed)
    driver_markets = random_dataset(rng)
    moments = [
        NOON_LA,
        dt.datetime(2026, 11, 21, 9, 30, tzinfo=UTC),  # Saturday 01:30 in Las Vegas
        dt.datetime(2026, 11, 19, 0, 30, tzinfo=UTC),  # Wednesday 16:30 in Las Vegas
        dt.datetime(2026, 3, 8, 17, 0, tzinfo=UTC),  # spring-forward Sunday
        dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # the repeated hour in New York
    ]
    for now in moments:
        eligibility_recompute(now=now, driver_markets=driver_markets)

        assert rows() == expected_rows(now=now, driver_markets=driver_markets), now


def test_recompute_random_dataset_covers_every_reason_code():
    driver_markets = random_dataset(random.Random(3))
    seen: set[str] = set()
    for now in [NOON_LA, dt.datetime(2026, 11, 19, 6, 0, tzinfo=UTC), dt.datetime(2026, 11, 18, 23, 0, tzinfo=UTC)]:
        eligibility_recompute(now=now, driver_markets=driver_markets)
        for row in rows():
            seen.update(row[3])
    eligible = EligibilityResult.objects.filter(eligible=True).count()

    assert seen == set(rules.REASON_CODES)
    assert eligible > 0


def test_recompute_writes_one_row_per_listing_and_mall_with_reasons_hint_and_until():
    store = make_store(name="Sunset Apparel — Fashion Show")
    stocked = make_listing(seller=store.seller)
    empty = make_listing(seller=store.seller)
    make_stock(store=store, listing=stocked, on_hand=2)
    make_stock(store=store, listing=empty, on_hand=1, reserved=1)

    written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    assert written == 2
    assert rows() == [
        (stocked.pk, store.mall_id, True, [], "", dt.datetime(2026, 11, 19, 1, 0, tzinfo=UTC)),
        (empty.pk, store.mall_id, False, ["out_of_stock"], "restock 1 unit at Sunset Apparel — Fashion Show", None),
    ]


def test_recompute_again_without_change_writes_nothing_and_keeps_computed_at():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=2)
    eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    written = eligibility_recompute(now=NOON_LA + dt.timedelta(minutes=5), driver_markets={store.mall.market_id})

    assert written == 0
    assert EligibilityResult.objects.get().computed_at == NOON_LA


def test_recompute_by_listing_changes_only_that_listing():
    store = make_store()
    first = make_listing(seller=store.seller)
    second = make_listing(seller=store.seller)
    make_stock(store=store, listing=first, on_hand=1)
    make_stock(store=store, listing=second, on_hand=1)
    markets = {store.mall.market_id}
    eligibility_recompute(now=NOON_LA, driver_markets=markets)
    Stock.objects.update(on_hand=0)
    later = NOON_LA + dt.timedelta(minutes=1)

    written = eligibility_recompute(listing_ids=[first.pk], now=later, driver_markets=markets)

    assert written == 1
    assert [(r.listing_id, r.eligible, r.computed_at) for r in EligibilityResult.objects.order_by("listing_id")] == [
        (first.pk, False, later),
        (second.pk, True, NOON_LA),
    ]


def test_recompute_by_store_and_by_mall():
    store = make_store()
    other = make_store()
    mine = make_listing(seller=store.seller)
    theirs = make_listing(seller=other.seller)
    make_stock(store=store, listing=mine, on_hand=1)
    make_stock(store=other, listing=theirs, on_hand=1)
    markets = {store.mall.market_id, other.mall.market_id}
    eligibility_recompute(now=NOON_LA, driver_markets=markets)
    Store.objects.update(status=StoreStatus.SUSPENDED)

    by_store = eligibility_recompute(store_ids=[store.pk], now=NOON_LA, driver_markets=markets)
    by_mall = eligibility_recompute(mall_ids=[other.mall_id], now=NOON_LA, driver_markets=markets)

    assert (by_store, by_mall) == (1, 1)
    assert [r.reasons for r in EligibilityResult.objects.order_by("listing_id")] == [["no_live_store"]] * 2


def test_recompute_store_without_stock_row_gives_restock_hint():
    store = make_store(name="Kiosk")
    listing = make_listing(seller=store.seller)

    eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    assert rows() == [(listing.pk, store.mall_id, False, ["out_of_stock"], "restock 1 unit at Kiosk", None)]


def test_recompute_removes_rows_of_a_mall_where_the_seller_has_no_store_left():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing)
    eligibility_recompute(now=NOON_LA, driver_markets=set())
    elsewhere = make_mall()
    Store.objects.filter(pk=store.pk).update(mall=elsewhere)

    eligibility_recompute(listing_ids=[listing.pk], now=NOON_LA, driver_markets=set())

    assert [(row[0], row[1]) for row in rows()] == [(listing.pk, elsewhere.pk)]


def test_recompute_uses_drivers_app_for_supply_by_default():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing)

    eligibility_recompute(now=NOON_LA)

    assert rows()[0][3] == ["no_driver_supply"]


def test_recompute_keeps_store_states_for_the_sweeper():
    store = make_store(status=StoreStatus.PAUSED, paused_reason="Stocktake")
    make_listing(seller=store.seller)

    eligibility_recompute(now=NOON_LA, driver_markets=set())

    state = EligibilityStoreState.objects.get()
    assert (state.store_id, state.candidate, state.reason_bits) == (store.pk, True, rules.BIT["store_paused"])
    assert state.eligible_until == dt.datetime(2026, 11, 19, 1, 0, tzinfo=UTC)


def test_recompute_paused_store_gives_resume_hint():
    store = make_store(name="Sunset", status=StoreStatus.PAUSED, paused_reason="Stocktake")
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing)

    eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    assert rows() == [(listing.pk, store.mall_id, False, ["store_paused"], "resume same-day at Sunset", None)]


def test_full_recompute_removes_rows_of_a_mall_where_the_seller_has_no_store_left():
    store = make_store()
    listing = make_listing(seller=store.seller)
    kept = make_store(seller=store.seller)
    eligibility_recompute(now=NOON_LA, driver_markets=set())
    Store.objects.filter(pk=store.pk).update(mall=kept.mall)

    written = eligibility_recompute(now=NOON_LA, driver_markets=set())

    assert written == 0
    assert [(row[0], row[1]) for row in rows()] == [(listing.pk, kept.mall_id)]
