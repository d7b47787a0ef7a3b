"""Stock reservation under concurrent orders on the last unit (PostgreSQL, real threads)."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from orders.models import Order
from orders.services import NewLine, order_cancel, order_receive, order_reject
from portal.errors import ActionRefused
from portal.tests.factories import make_listing, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityResult, Stock

THREADS = 6


def _receive(store, listing, n: int):
    now = timezone.now()
    return order_receive(
        store=store,
        marketplace_order_id=f"113-0000000-{n:07d}",
        placed_at=now,
        deliver_by=now + dt.timedelta(hours=3),
        customer_name="Jamie D.",
        lines=[NewLine(listing=listing, quantity=1)],
        address_line1="3355 S Las Vegas Blvd",
        city="Las Vegas",
        state="NV",
        postal_code="89109",
    )


def _race_for_last_unit(store, listing, *, first_number: int = 0) -> tuple[list[Order], list[ActionRefused]]:
    barrier = threading.Barrier(THREADS)
    won: list[Order] = []
    refused: list[ActionRefused] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        try:
            barrier.wait()
            order = _receive(store, listing, first_number + n)
            with lock:
                won.append(order)
        except ActionRefused as refusal:
            with lock:
                refused.append(refusal)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return won, refused


def _reasons(listing) -> list[str]:
    return EligibilityResult.objects.get(listing=listing).reasons


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_receive_concurrent_orders_on_last_unit_one_wins_others_refused():
    store = make_store(same_day_cutoff=dt.time(23, 59, 59), hourly_capacity=50)
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=1)

    won, refused = _race_for_last_unit(store, listing)

    assert len(won) == 1
    assert [refusal.code for refusal in refused] == ["out_of_stock"] * (THREADS - 1)
    assert Order.objects.count() == 1
    stock = Stock.objects.get()
    assert (stock.on_hand, stock.reserved) == (1, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_cancel_and_reject_release_the_last_unit_for_the_next_order():
    store = make_store(same_day_cutoff=dt.time(23, 59, 59), hourly_capacity=50)
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=1)
    markets = {store.mall.market_id}
    (first,), _ = _race_for_last_unit(store, listing)
    eligibility_recompute(listing_ids=[listing.pk], driver_markets=markets)
    while_reserved = _reasons(listing)

    order_cancel(order=first, acting_user=None, reason="Shopper cancelled")
    eligibility_recompute(listing_ids=[listing.pk], driver_markets=markets)
    after_cancel = _reasons(listing)
    (second,), refused = _race_for_last_unit(store, listing, first_number=THREADS)
    order_reject(order=second, acting_user=None, reason="Damaged on the shelf")
    after_reject = Stock.objects.get()

    assert while_reserved == ["out_of_stock"]
    assert after_cancel == []
    assert len(refused) == THREADS - 1
    assert (after_reject.on_hand, after_reject.reserved) == (1, 0)
