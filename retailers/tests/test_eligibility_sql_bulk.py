"""The bulk paths of the set-based recompute (whole malls or everything): the first run's insert,
and the later runs' single pass that finds new, changed and orphaned rows."""

import datetime as dt

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from portal.tests.factories import make_listing, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityResult, Store

pytestmark = pytest.mark.django_db
# Wednesday 2026-11-18 12:00 in Las Vegas.
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=dt.UTC)
TABLE = EligibilityResult._meta.db_table


def _index_and_constraint_definitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass
            UNION ALL
            SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass
            ORDER BY 1
            """,
            [TABLE, TABLE],
        )
        return [row[0] for row in cursor.fetchall()]


def _exclusive_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE relation = %s::regclass AND mode = 'AccessExclusiveLock'", [TABLE]
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_first_full_recompute_on_an_empty_table_keeps_every_index_and_constraint():
    store = make_store()
    listings = [make_listing(seller=store.seller) for _ in range(3)]
    for listing in listings:
        make_stock(store=store, listing=listing, on_hand=1)
    before = _index_and_constraint_definitions()
    assert any("eligibility_one_row_per_listing_mall UNIQUE (listing_id, mall_id)" in d for d in before)
    assert any("INDEX eligibility_feed ON" in d for d in before)

    written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    assert written == 3
    # The indexes were dropped and built again (under the table's exclusive lock, which this
    # test's surrounding transaction still holds), and came back exactly as they were.
    assert _exclusive_locks() == 1
    assert _index_and_constraint_definitions() == before
    duplicate = EligibilityResult.objects.get(listing=listings[0])
    duplicate.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


@pytest.mark.postgres
def test_first_full_recompute_numbers_ids_in_mall_listing_order_and_moves_the_sequence_past_them():
    store = make_store()
    other = make_store(seller=store.seller)
    listings = [make_listing(seller=store.seller) for _ in range(3)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [TABLE])
        (taken,) = cursor.fetchone()

    written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    assert written == 6
    # Mall by mall, listings in order within each (the feed index is then built from sorted rows).
    pairs = sorted((mall_id, listing.pk) for listing in listings for mall_id in (store.mall_id, other.mall_id))
    assert list(EligibilityResult.objects.order_by("pk").values_list("pk", "listing_id", "mall_id")) == [
        (taken + 1 + n, listing_id, mall_id) for n, (mall_id, listing_id) in enumerate(pairs)
    ]
    # The next row the sequence gives out follows them (an incremental run's insert).
    added = make_listing(seller=store.seller)
    eligibility_recompute(listing_ids=[added.pk], now=NOON_LA, driver_markets={store.mall.market_id})
    assert list(EligibilityResult.objects.filter(listing=added).order_by("pk").values_list("pk", flat=True)) == [
        taken + 7,
        taken + 8,
    ]


@pytest.mark.postgres
def test_first_full_recompute_while_another_session_reads_the_table_inserts_without_touching_indexes():
    store = make_store(name="Kiosk")
    listing = make_listing(seller=store.seller)
    before = _index_and_constraint_definitions()
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    try:
        # A feed reader in the middle of its transaction: the index rebuild must not wait for it.
        other.execute(f"LOCK TABLE {TABLE} IN ACCESS SHARE MODE")
        written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})
        exclusive_locks = _exclusive_locks()
    finally:
        other.rollback()
        other.close()

    assert written == 1
    assert exclusive_locks == 0
    assert _index_and_constraint_definitions() == before
    assert [(r.listing_id, r.hint) for r in EligibilityResult.objects.all()] == [
        (listing.pk, "restock 1 unit at Kiosk")
    ]


def test_full_recompute_after_changes_updates_inserts_and_deletes_only_what_differs():
    store = make_store(name="Kiosk")
    gone = make_store(seller=store.seller)
    kept, restocked = make_listing(seller=store.seller), make_listing(seller=store.seller)
    make_stock(store=store, listing=kept, on_hand=2)
    stock = make_stock(store=store, listing=restocked, on_hand=0)
    markets = {store.mall.market_id, gone.mall.market_id}
    eligibility_recompute(now=NOON_LA, driver_markets=markets)
    later = NOON_LA + dt.timedelta(minutes=5)
    stock.on_hand = 3
    stock.save()
    added = make_listing(seller=store.seller)
    Store.objects.filter(pk=gone.pk).update(mall=store.mall)

    written = eligibility_recompute(now=later, driver_markets=markets)

    assert written == 2
    assert [
        (r.listing_id, r.mall_id, r.eligible, r.hint, r.computed_at)
        for r in EligibilityResult.objects.order_by("listing_id", "mall_id")
    ] == [
        (kept.pk, store.mall_id, True, "", NOON_LA),
        (restocked.pk, store.mall_id, True, "", later),
        (added.pk, store.mall_id, False, "restock 1 unit at Kiosk", later),
    ]


def test_mall_recompute_leaves_other_malls_rows_alone():
    store = make_store()
    other = make_store(seller=store.seller)
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=1)
    make_stock(store=other, listing=listing, on_hand=1)
    markets = {store.mall.market_id, other.mall.market_id}
    eligibility_recompute(now=NOON_LA, driver_markets=markets)
    Store.objects.filter(pk__in=[store.pk, other.pk]).update(status="suspended")
    later = NOON_LA + dt.timedelta(minutes=5)

    written = eligibility_recompute(mall_ids=[store.mall_id], now=later, driver_markets=markets)

    assert written == 1
    assert {
        r.mall_id: (r.eligible, r.reasons, r.computed_at) for r in EligibilityResult.objects.filter(listing=listing)
    } == {
        store.mall_id: (False, ["no_live_store"], later),
        other.mall_id: (True, [], NOON_LA),
    }


@pytest.mark.postgres
def test_result_ids_come_a_thousand_at_a_time_from_the_sequence():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seqcache FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence(%s, 'id')::regclass", [TABLE]
        )
        assert cursor.fetchone() == (1000,)


def test_first_full_recompute_mall_by_mall_gives_what_a_later_full_recompute_computes():
    # The first run computes one mall at a time (stock grouped per listing); later full runs
    # compute every mall in one statement (stock grouped per listing and mall). A full run right
    # after the first must find nothing to change.
    kiosk = make_store(name="Kiosk")
    corner = make_store(name="Corner", seller=kiosk.seller, mall=kiosk.mall, status="paused", paused_reason="Count")
    closed = make_store(name="Closed", seller=kiosk.seller, around_the_clock=False)
    elsewhere = make_store(name="Elsewhere", mall=closed.mall)
    tee, mug, hat = (make_listing(seller=kiosk.seller) for _ in range(3))
    heavy = make_listing(seller=elsewhere.seller, weight_grams=50_000)
    make_stock(store=kiosk, listing=tee, on_hand=1)
    make_stock(store=corner, listing=mug, on_hand=2)
    make_stock(store=closed, listing=mug, on_hand=1)
    make_stock(store=closed, listing=hat, on_hand=1, reserved=1)
    make_stock(store=elsewhere, listing=heavy, on_hand=1)
    markets = {kiosk.mall.market_id, closed.mall.market_id}

    written = eligibility_recompute(now=NOON_LA, driver_markets=markets)
    again = eligibility_recompute(now=NOON_LA, driver_markets=markets)

    assert (written, again) == (7, 0)
    rows = EligibilityResult.objects.order_by("listing_id", "mall_id")
    assert [(r.listing_id, r.mall_id, r.reasons, r.hint) for r in rows] == [
        (tee.pk, kiosk.mall_id, [], ""),
        (tee.pk, closed.mall_id, ["store_closed", "out_of_stock"], ""),
        (mug.pk, kiosk.mall_id, ["store_paused", "out_of_stock"], "restock 1 unit at Kiosk"),
        (mug.pk, closed.mall_id, ["store_closed"], ""),
        (hat.pk, kiosk.mall_id, ["store_paused", "out_of_stock"], "restock 1 unit at Kiosk"),
        (hat.pk, closed.mall_id, ["store_closed", "out_of_stock"], ""),
        (heavy.pk, closed.mall_id, ["too_heavy"], ""),
    ]
