"""The eligibility feed page the marketplace API serves (marketplace-api.md)."""

import datetime as dt

import pytest

from portal.tests.factories import make_listing, make_mall, make_seller, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityResult, Mall, Stock
from retailers.selectors import eligibility_feed_page

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=UTC)


def _walk(mall_slug: str, *, changed_since=None, limit: int = 2) -> list[dict]:
    items, cursor = [], None
    while True:
        page = eligibility_feed_page(mall_slug=mall_slug, changed_since=changed_since, cursor=cursor, limit=limit)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


def test_eligibility_feed_page_has_the_contract_shape():
    mall = make_mall(slug="fashion-show")
    seller = make_seller(marketplace_seller_id="A2SUNSETAPPAREL")
    store = make_store(seller=seller, mall=mall)
    tee = make_listing(seller=seller, seller_sku="SA-TEE-001")
    cap = make_listing(seller=seller, seller_sku="SA-CAP-002")
    make_stock(store=store, listing=tee, on_hand=2)
    make_stock(store=store, listing=cap, on_hand=0)
    eligibility_recompute(now=NOON_LA, driver_markets={mall.market_id})

    page = eligibility_feed_page(mall_slug="fashion-show", changed_since=None, cursor=None)

    assert page.next_cursor is None
    assert sorted(page.items, key=lambda item: item["sku"]) == [
        {
            "seller_id": "A2SUNSETAPPAREL",
            "sku": "SA-CAP-002",
            "mall": "fashion-show",
            "eligible": False,
            "reasons": ["out_of_stock"],
            "eligible_until": None,
            "computed_at": "2026-11-18T20:00:00Z",
        },
        {
            "seller_id": "A2SUNSETAPPAREL",
            "sku": "SA-TEE-001",
            "mall": "fashion-show",
            "eligible": True,
            "reasons": [],
            "eligible_until": "2026-11-18T17:00:00-08:00",
            "computed_at": "2026-11-18T20:00:00Z",
        },
    ]


def test_eligibility_feed_page_walks_every_row_once_with_keyset_cursor():
    store = make_store()
    listings = [make_listing(seller=store.seller) for _ in range(5)]
    other = make_store()
    make_listing(seller=other.seller)
    eligibility_recompute(now=NOON_LA, driver_markets=set())

    items = _walk(store.mall.slug)

    assert sorted(item["sku"] for item in items) == sorted(listing.seller_sku for listing in listings)


def test_eligibility_feed_page_changed_since_returns_only_later_changes():
    store = make_store()
    first = make_listing(seller=store.seller)
    second = make_listing(seller=store.seller)
    make_stock(store=store, listing=first, on_hand=1)
    make_stock(store=store, listing=second, on_hand=1)
    eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})
    later = NOON_LA + dt.timedelta(minutes=2)
    Stock.objects.filter(listing=second).update(on_hand=0)
    eligibility_recompute(listing_ids=[second.pk], now=later, driver_markets={store.mall.market_id})

    items = _walk(store.mall.slug, changed_since=NOON_LA + dt.timedelta(minutes=1))

    assert [(item["sku"], item["reasons"]) for item in items] == [(second.seller_sku, ["out_of_stock"])]


def test_eligibility_feed_page_row_changed_during_walk_is_read_again_at_the_end():
    store = make_store()
    skus = {make_listing(seller=store.seller).seller_sku for _ in range(3)}
    eligibility_recompute(now=NOON_LA, driver_markets=set())
    first_page = eligibility_feed_page(mall_slug=store.mall.slug, changed_since=None, cursor=None, limit=2)
    seen_sku = first_page.items[0]["sku"]
    EligibilityResult.objects.filter(listing__seller_sku=seen_sku).update(computed_at=NOON_LA + dt.timedelta(minutes=1))

    rest = eligibility_feed_page(mall_slug=store.mall.slug, changed_since=None, cursor=first_page.next_cursor)

    (unseen_sku,) = skus - {item["sku"] for item in first_page.items}
    assert [item["sku"] for item in rest.items] == [unseen_sku, seen_sku]


def test_eligibility_feed_page_unknown_mall_raises_does_not_exist():
    with pytest.raises(Mall.DoesNotExist):
        eligibility_feed_page(mall_slug="nowhere", changed_since=None, cursor=None)


@pytest.mark.parametrize("cursor", ["garbage!", "bm90LWEtY3Vyc29y", "MjAyNi0xMS0xOFQyMDowMDowMHxhYmM"])
def test_eligibility_feed_page_malformed_cursor_raises_value_error(cursor):
    store = make_store()

    with pytest.raises(ValueError, match="cursor"):
        eligibility_feed_page(mall_slug=store.mall.slug, changed_since=None, cursor=cursor)


def test_eligibility_feed_page_limit_out_of_range_raises_value_error():
    store = make_store()

    with pytest.raises(ValueError, match="limit"):
        eligibility_feed_page(mall_slug=store.mall.slug, changed_since=None, cursor=None, limit=1001)
