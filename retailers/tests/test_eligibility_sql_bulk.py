"""The bulk paths of the set-based recompute (whole malls or everything): the first run's insert,
and the later runs' single pass that finds new, changed and orphaned rows."""

import datetime as dt
import logging
import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from portal.tests.factories import make_listing, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityResult, Store
from retailers.tests.postgres_helpers import build_tables, other_session, partition_of_each_mall, partitions

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


def _partition_indexes(partition: str) -> list[str]:
    """The partition's indexes, by the results table's index each is attached to."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT parent.relname::text FROM pg_index i
            JOIN pg_inherits h ON h.inhrelid = i.indexrelid JOIN pg_class parent ON parent.oid = h.inhparent
            WHERE i.indrelid = %s::regclass ORDER BY 1
            """,
            [partition],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
def test_first_full_recompute_swaps_in_a_built_partition_per_mall_with_every_index_and_constraint():
    store = make_store()
    other = make_store(seller=store.seller)
    listings = [make_listing(seller=store.seller) for _ in range(3)]
    for listing in listings:
        make_stock(store=store, listing=listing, on_hand=1)
    before = _index_and_constraint_definitions()
    assert any("eligibility_one_row_per_listing_mall PRIMARY KEY (listing_id, mall_id)" in d for d in before)
    assert any("INDEX eligibility_feed ON" in d for d in before)

    written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    assert written == 6
    # Each mall's rows are in the mall's own partition, built and attached in this transaction
    # (which still holds the table's exclusive lock), carrying every index of the table.
    assert _exclusive_locks() == 1
    mall_partitions = [
        (f"eligibility_mall_{m}", f"FOR VALUES IN ('{m}')") for m in sorted({store.mall_id, other.mall_id})
    ]
    assert set(mall_partitions) | {("eligibility_mall_default", "DEFAULT")} <= set(partitions())
    assert partition_of_each_mall() == {m: f"eligibility_mall_{m}" for m in (store.mall_id, other.mall_id)}
    for name, _ in mall_partitions:
        assert _partition_indexes(name) == ["eligibility_feed", "eligibility_one_row_per_listing_mall"]
    assert _index_and_constraint_definitions() == before
    assert build_tables() == []
    first = EligibilityResult.objects.get(listing=listings[0], mall=store.mall)
    with pytest.raises(IntegrityError), transaction.atomic():
        EligibilityResult.objects.create(
            listing=first.listing, mall=first.mall, eligible=True, reason_bits=0, computed_at=NOON_LA
        )


def test_result_ids_pack_the_mall_and_the_listing_in_first_and_incremental_runs():
    store = make_store()
    other = make_store(seller=store.seller)
    listings = [make_listing(seller=store.seller) for _ in range(3)]

    written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})
    added = make_listing(seller=store.seller)
    eligibility_recompute(listing_ids=[added.pk], now=NOON_LA, driver_markets={store.mall.market_id})

    assert written == 6
    pairs = sorted(
        (mall_id, listing.pk) for listing in [*listings, added] for mall_id in (store.mall_id, other.mall_id)
    )
    assert list(EligibilityResult.objects.order_by("pk").values_list("pk", "listing_id", "mall_id")) == [
        (mall_id * 2**32 + listing_id, listing_id, mall_id) for mall_id, listing_id in pairs
    ]


@pytest.mark.postgres
def test_first_full_recompute_waits_for_a_reader_then_swaps_its_partitions_in():
    store = make_store(name="Kiosk")
    listing = make_listing(seller=store.seller)
    reader = other_session()
    try:
        # A feed reader in the middle of its transaction, done 0.3 s later.
        reader.execute("SELECT COUNT(*) FROM retailers_eligibilityresult")
        timer = threading.Timer(0.3, reader.rollback)
        timer.start()
        started = time.monotonic()
        written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})
        waited = time.monotonic() - started
        timer.join()
    finally:
        reader.close()

    assert written == 1
    assert waited >= 0.3
    assert _exclusive_locks() == 1
    assert (f"eligibility_mall_{store.mall_id}", f"FOR VALUES IN ('{store.mall_id}')") in partitions()
    assert [(r.listing_id, r.hint) for r in EligibilityResult.objects.all()] == [
        (listing.pk, "restock 1 unit at Kiosk")
    ]


@pytest.mark.postgres
def test_first_full_recompute_copies_its_rows_in_when_a_reader_keeps_the_table(settings, caplog):
    settings.ELIGIBILITY_SWAP_LOCK_TIMEOUT_MS = 200
    store = make_store(name="Kiosk")
    listing = make_listing(seller=store.seller)
    before = partitions()
    reader = other_session()
    try:
        reader.execute("SELECT COUNT(*) FROM retailers_eligibilityresult")  # and stays in its transaction
        with caplog.at_level(logging.WARNING, logger="retailers.eligibility_partitions"):
            written = eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})
        exclusive_locks = _exclusive_locks()
    finally:
        reader.rollback()
        reader.close()

    assert written == 1
    assert exclusive_locks == 0
    assert caplog.messages == ["eligibility: readers kept the results table for 200 ms; the built rows are copied in"]
    assert partitions() == before
    assert build_tables() == []
    assert [(r.listing_id, r.hint) for r in EligibilityResult.objects.all()] == [
        (listing.pk, "restock 1 unit at Kiosk")
    ]


@pytest.mark.postgres
def test_first_full_recompute_drops_a_built_table_a_killed_run_left_behind():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=1)
    leftover = f"eligibility_build_{store.mall_id}_0badc0de"
    with connection.cursor() as cursor:
        # What a helper commits before the recompute that started it is killed.
        cursor.execute(f"CREATE TABLE {leftover} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")

    eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})

    assert build_tables() == []
    assert EligibilityResult.objects.get().listing_id == listing.pk


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
