"""Helper connections of the full recompute (retailers.eligibility_parallel): each compares its
malls with exactly what the recompute's own connection sees, and all writes stay in its one
transaction. PostgreSQL only (SQLite recomputes on its one connection), and on committed data:
helpers are other sessions."""

import datetime as dt
import logging
import random
import socket
import threading

import psycopg
import pytest
from django.db import connection, transaction

from portal.tests.factories import make_listing, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityResult, Listing, Stock, Store, StoreHours
from retailers.tests.postgres_helpers import build_tables, other_session, partition_of_each_mall, partitions
from retailers.tests.test_eligibility_sql import expected_rows, random_dataset, rows

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
# Wednesday 2026-11-18 12:00 in Las Vegas.
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=dt.UTC)
LATER = NOON_LA + dt.timedelta(minutes=5)
LOGGER = "retailers.eligibility_parallel"


@pytest.fixture
def two_malls(settings):
    """One seller with a store in each of two malls; with two connections the recompute's own
    compares the first mall and one helper the second (malls go round the connections in id
    order). The second store closes at 12:03."""
    settings.ELIGIBILITY_RECOMPUTE_CONNECTIONS = 2
    kiosk = make_store(name="Kiosk")
    corner = make_store(name="Corner", seller=kiosk.seller, around_the_clock=False)
    StoreHours.objects.bulk_create(
        StoreHours(store=corner, weekday=day, opens_at=dt.time(9, 0), closes_at=dt.time(12, 3)) for day in range(7)
    )
    tee, mug = make_listing(seller=kiosk.seller), make_listing(seller=kiosk.seller)
    make_stock(store=kiosk, listing=tee, on_hand=2)
    make_stock(store=corner, listing=tee, on_hand=2)
    make_stock(store=kiosk, listing=mug, on_hand=0)
    make_stock(store=corner, listing=mug, on_hand=1)
    markets = {kiosk.mall.market_id, corner.mall.market_id}
    assert kiosk.mall_id < corner.mall_id
    # The first run: all eligible but the mug at the Kiosk.
    assert eligibility_recompute(now=NOON_LA, driver_markets=markets) == 4
    return kiosk, corner, tee, mug, markets


@pytest.fixture
def no_server_for_new_sessions(monkeypatch):
    """New sessions (the helpers', not the recompute's already open one) find no server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", closed_port)


def _results() -> list[tuple]:
    return [
        (r.listing_id, r.mall_id, r.reasons, r.computed_at)
        for r in EligibilityResult.objects.order_by("listing_id", "mall_id")
    ]


def test_helper_compares_its_mall_with_the_store_states_this_transaction_refreshed(two_malls, settings, caplog):
    kiosk, corner, tee, mug, markets = two_malls
    Stock.objects.filter(store=kiosk, listing=mug).update(on_hand=3)

    # At 12:05 the Corner has closed: its state changes inside the recompute's transaction, and the
    # helper comparing Corner's mall must use that state, not the committed one (still open).
    with caplog.at_level(logging.INFO, logger=LOGGER):
        written = eligibility_recompute(now=LATER, driver_markets=markets)

    assert [record.getMessage() for record in caplog.records if record.name == LOGGER] == [
        "eligibility: 1 of 2 malls compared by 1 helper connection(s)"
    ]
    assert written == 3
    assert _results() == [
        (tee.pk, kiosk.mall_id, [], NOON_LA),
        (tee.pk, corner.mall_id, ["store_closed"], LATER),
        (mug.pk, kiosk.mall_id, [], LATER),
        (mug.pk, corner.mall_id, ["store_closed"], LATER),
    ]
    # The recompute on its own connection alone finds nothing more to change.
    settings.ELIGIBILITY_RECOMPUTE_CONNECTIONS = 1
    assert eligibility_recompute(now=LATER, driver_markets=markets) == 0


def test_helpers_send_new_changed_and_orphaned_rows_of_their_malls(two_malls, caplog):
    kiosk, corner, tee, mug, markets = two_malls
    Stock.objects.filter(store=corner, listing=tee).update(on_hand=0)
    Stock.objects.filter(store=kiosk, listing=tee).update(on_hand=0)
    added = make_listing(seller=kiosk.seller)
    make_stock(store=corner, listing=added, on_hand=1)
    # A stored row for a pair that no longer exists: another seller's listing, sold only in the
    # first mall, in Corner's mall.
    stray = make_listing(seller=make_store(name="Elsewhere", mall=kiosk.mall).seller)
    EligibilityResult.objects.create(
        listing=stray, mall=corner.mall, eligible=True, reason_bits=0, hint="", computed_at=NOON_LA
    )

    with caplog.at_level(logging.INFO, logger=LOGGER):
        written = eligibility_recompute(now=NOON_LA + dt.timedelta(minutes=1), driver_markets=markets)

    one_minute_later = NOON_LA + dt.timedelta(minutes=1)
    assert written == 5
    assert _results() == [
        (tee.pk, kiosk.mall_id, ["out_of_stock"], one_minute_later),
        (tee.pk, corner.mall_id, ["out_of_stock"], one_minute_later),
        (mug.pk, kiosk.mall_id, ["out_of_stock"], NOON_LA),
        (mug.pk, corner.mall_id, [], NOON_LA),
        (added.pk, kiosk.mall_id, ["out_of_stock"], one_minute_later),
        (added.pk, corner.mall_id, [], one_minute_later),
        (stray.pk, kiosk.mall_id, ["out_of_stock"], one_minute_later),
    ]
    assert "eligibility: 1 of 2 malls compared by 1 helper connection(s)" in caplog.messages


def test_recompute_inside_an_enclosing_transaction_uses_no_helper_and_sees_its_changes(two_malls, caplog):
    kiosk, corner, tee, mug, markets = two_malls

    with caplog.at_level(logging.INFO, logger=LOGGER), transaction.atomic():
        # Not committed: a helper (another session) could not see it.
        Stock.objects.filter(store=corner, listing=tee).update(on_hand=0)
        written = eligibility_recompute(now=NOON_LA + dt.timedelta(minutes=1), driver_markets=markets)

    assert written == 1
    assert [(r.listing_id, r.mall_id, r.reasons) for r in EligibilityResult.objects.filter(listing=tee)] == [
        (tee.pk, kiosk.mall_id, []),
        (tee.pk, corner.mall_id, ["out_of_stock"]),
    ]
    assert [record for record in caplog.records if record.name == LOGGER] == []


def test_a_failing_helper_fails_the_recompute_and_nothing_is_written(two_malls, monkeypatch):
    kiosk, corner, tee, mug, markets = two_malls
    Stock.objects.filter(store=kiosk, listing=tee).update(on_hand=0)
    Stock.objects.filter(store=corner, listing=tee).update(on_hand=0)
    before = _results()
    # New sessions (the helper's, not the recompute's already open one) may not create tables.
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "options", "-c default_transaction_read_only=on")

    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        eligibility_recompute(now=LATER, driver_markets=markets)

    assert _results() == before
    assert [(r.listing_id, r.reasons) for r in EligibilityResult.objects.filter(listing=tee)] == [
        (tee.pk, []),
        (tee.pk, []),
    ]


def test_a_helper_that_cannot_connect_hands_its_malls_back(two_malls, no_server_for_new_sessions, caplog):
    kiosk, corner, tee, mug, markets = two_malls
    Stock.objects.filter(store=corner, listing=tee).update(on_hand=0)
    Stock.objects.filter(store=kiosk, listing=tee).update(on_hand=0)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        written = eligibility_recompute(now=LATER, driver_markets=markets)

    assert written == 3
    assert _results() == [
        (tee.pk, kiosk.mall_id, ["out_of_stock"], LATER),
        (tee.pk, corner.mall_id, ["store_closed", "out_of_stock"], LATER),
        (mug.pk, kiosk.mall_id, ["out_of_stock"], NOON_LA),
        (mug.pk, corner.mall_id, ["store_closed"], LATER),
    ]
    messages = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert messages[0].startswith("eligibility: a helper connection failed (")
    assert messages[0].endswith("); its 1 mall(s) are compared here")
    assert messages[1:] == ["eligibility: 0 of 2 malls compared by 1 helper connection(s)"]


# --- The first run: helpers build malls' partitions (retailers.eligibility_partitions) -------------

PARTITIONS_LOGGER = "retailers.eligibility_partitions"


def test_first_run_builds_one_mall_here_and_one_on_a_helper_and_swaps_both_in(two_malls, caplog):
    kiosk, corner, tee, mug, markets = two_malls  # the fixture ran the first run; here it runs again
    EligibilityResult.objects.all().delete()

    with caplog.at_level(logging.INFO, logger=LOGGER):
        written = eligibility_recompute(now=NOON_LA, driver_markets=markets)

    assert written == 4
    assert [record.getMessage() for record in caplog.records if record.name == LOGGER] == [
        "eligibility: 1 of 2 malls built by 1 helper connection(s)"
    ]
    assert _results() == [
        (tee.pk, kiosk.mall_id, [], NOON_LA),
        (tee.pk, corner.mall_id, [], NOON_LA),
        (mug.pk, kiosk.mall_id, ["out_of_stock"], NOON_LA),
        (mug.pk, corner.mall_id, [], NOON_LA),
    ]
    assert partition_of_each_mall() == {
        kiosk.mall_id: f"eligibility_mall_{kiosk.mall_id}",
        corner.mall_id: f"eligibility_mall_{corner.mall_id}",
    }
    assert build_tables() == []


def test_helper_builds_its_mall_with_the_store_states_this_transaction_refreshed(two_malls, caplog):
    kiosk, corner, tee, mug, markets = two_malls
    EligibilityResult.objects.all().delete()

    # At 12:05 the Corner has closed: the helper building Corner's mall must see it.
    with caplog.at_level(logging.INFO, logger=LOGGER):
        eligibility_recompute(now=LATER, driver_markets=markets)

    assert "eligibility: 1 of 2 malls built by 1 helper connection(s)" in caplog.messages
    assert _results() == [
        (tee.pk, kiosk.mall_id, [], LATER),
        (tee.pk, corner.mall_id, ["store_closed"], LATER),
        (mug.pk, kiosk.mall_id, ["out_of_stock"], LATER),
        (mug.pk, corner.mall_id, ["store_closed"], LATER),
    ]


def test_a_failing_helper_build_fails_the_first_run_and_leaves_nothing(two_malls, monkeypatch):
    kiosk, corner, tee, mug, markets = two_malls
    EligibilityResult.objects.all().delete()
    before = partitions()
    assert (f"eligibility_mall_{kiosk.mall_id}", f"FOR VALUES IN ('{kiosk.mall_id}')") in before
    # New sessions (the helper's) may not create tables.
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "options", "-c default_transaction_read_only=on")

    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        eligibility_recompute(now=LATER, driver_markets=markets)

    assert _results() == []
    assert partitions() == before
    assert build_tables() == []


def test_a_helper_that_cannot_connect_hands_its_builds_back(two_malls, no_server_for_new_sessions, caplog):
    kiosk, corner, tee, mug, markets = two_malls
    EligibilityResult.objects.all().delete()

    with caplog.at_level(logging.INFO, logger=LOGGER):
        written = eligibility_recompute(now=NOON_LA, driver_markets=markets)

    assert written == 4
    messages = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert messages[0].endswith("); its 1 mall(s) are built here")
    assert messages[1:] == ["eligibility: 0 of 2 malls built by 1 helper connection(s)"]
    assert partition_of_each_mall() == {
        kiosk.mall_id: f"eligibility_mall_{kiosk.mall_id}",
        corner.mall_id: f"eligibility_mall_{corner.mall_id}",
    }


@pytest.mark.parametrize("seed", [2, 5])
def test_first_and_later_runs_with_helpers_match_the_pure_rules_on_a_random_dataset(seed, settings, caplog):
    settings.ELIGIBILITY_RECOMPUTE_CONNECTIONS = 2
    driver_markets = random_dataset(random.Random(seed))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for now in [NOON_LA, dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC), LATER]:
            eligibility_recompute(now=now, driver_markets=driver_markets)

            assert rows() == expected_rows(now=now, driver_markets=driver_markets), now

    assert "eligibility: 1 of 3 malls built by 1 helper connection(s)" in caplog.messages
    assert "eligibility: 1 of 3 malls compared by 1 helper connection(s)" in caplog.messages


def test_readers_during_a_first_run_see_no_mall_or_every_mall_never_part(settings):
    settings.ELIGIBILITY_RECOMPUTE_CONNECTIONS = 2
    seller = make_store().seller
    stores = [Store.objects.get(seller=seller), *(make_store(seller=seller) for _ in range(2))]
    listings = Listing.objects.bulk_create(
        Listing(seller=seller, seller_sku=f"BULK-{n}", title=f"Item {n}", category="apparel", weight_grams=300)
        for n in range(3000)
    )
    Stock.objects.bulk_create(
        Stock(store=store, listing=listing, on_hand=n % 3) for store in stores for n, listing in enumerate(listings)
    )
    markets = {store.mall.market_id for store in stores}
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        # A feed reader's statements, each in its own transaction, for as long as the run lasts.
        with other_session() as reader:
            reader.autocommit = True
            while not done.is_set():
                seen.append(reader.execute("SELECT COUNT(*) FROM retailers_eligibilityresult").fetchone()[0])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        written = eligibility_recompute(now=NOON_LA, driver_markets=markets)
    finally:
        done.set()
        reader.join()

    assert written == 9000
    assert seen.count(0) + seen.count(9000) == len(seen), sorted(set(seen))
    assert seen[0] == 0
