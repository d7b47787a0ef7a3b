"""Keeping eligibility current: hooks writing recompute requests in the change's transaction, the
beat sweepers, the nightly run."""

import datetime as dt

import pytest
from django.conf import settings
from django.db import transaction

from portal.errors import ActionRefused
from portal.tests.factories import make_listing, make_order, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute, eligibility_sweep_run
from retailers.models import EligibilityRequest, EligibilityResult, Stock, StoreEvent, StoreHours
from retailers.models import EligibilityRequestKind as Kind
from retailers.stock_services import stock_set_on_hand
from retailers.tasks import eligibility_recompute_all, eligibility_recompute_task

pytestmark = pytest.mark.django_db
UTC = dt.UTC
# Wednesday 2026-11-18 16:59 in Las Vegas (PST).
BEFORE_CUTOFF = dt.datetime(2026, 11, 19, 0, 59, tzinfo=UTC)


def result() -> EligibilityResult:
    return EligibilityResult.objects.get()


def test_sweep_recomputes_a_store_when_its_cutoff_passes():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing)
    eligibility_recompute(now=BEFORE_CUTOFF, driver_markets=set())
    at_cutoff = BEFORE_CUTOFF + dt.timedelta(minutes=1)

    written = eligibility_sweep_run(now=at_cutoff)

    assert written == 1
    assert (result().reasons, result().computed_at) == (["after_cutoff", "no_driver_supply"], at_cutoff)


def test_sweep_recomputes_a_store_when_it_opens():
    store = make_store(around_the_clock=False)
    StoreHours.objects.create(store=store, weekday=2, opens_at=dt.time(10), closes_at=dt.time(21))
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing)
    nine_59 = dt.datetime(2026, 11, 18, 17, 59, tzinfo=UTC)
    eligibility_recompute(now=nine_59, driver_markets=set())

    eligibility_sweep_run(now=nine_59 + dt.timedelta(minutes=1))

    assert result().reasons == ["no_driver_supply"]


def test_sweep_without_change_writes_nothing():
    store = make_store()
    make_stock(store=store, listing=make_listing(seller=store.seller))
    eligibility_recompute(now=BEFORE_CUTOFF, driver_markets=set())

    written = eligibility_sweep_run(now=BEFORE_CUTOFF + dt.timedelta(seconds=30))

    assert written == 0
    assert result().computed_at == BEFORE_CUTOFF


def test_sweep_notices_driver_supply_that_no_hook_reported():
    store = make_store()
    make_stock(store=store, listing=make_listing(seller=store.seller))
    eligibility_recompute(now=BEFORE_CUTOFF, driver_markets={store.mall.market_id})

    eligibility_sweep_run(now=BEFORE_CUTOFF)

    assert result().reasons == ["no_driver_supply"]


def test_recompute_by_listing_widens_to_the_store_when_its_hour_fills():
    store = make_store(hourly_capacity=1)
    first = make_listing(seller=store.seller)
    second = make_listing(seller=store.seller)
    make_stock(store=store, listing=first)
    make_stock(store=store, listing=second)
    eligibility_recompute(now=BEFORE_CUTOFF, driver_markets={store.mall.market_id})
    make_order(store=store, lines=[(first, 1)], placed_at=BEFORE_CUTOFF - dt.timedelta(minutes=5))

    eligibility_recompute(listing_ids=[first.pk], now=BEFORE_CUTOFF, driver_markets={store.mall.market_id})

    assert [r.reasons for r in EligibilityResult.objects.order_by("listing_id")] == [["store_at_capacity"]] * 2


def _requests() -> list[tuple[int, int]]:
    return sorted(EligibilityRequest.objects.values_list("kind", "object_id"))


def test_stock_set_on_hand_writes_the_listing_request():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=3)
    EligibilityRequest.objects.all().delete()

    stock_set_on_hand(store=store, listing=listing, on_hand=0, acting_user=None)

    assert _requests() == [(Kind.LISTING, listing.pk)]
    assert Stock.objects.get().on_hand == 0
    assert StoreEvent.objects.get().data == {"sku": listing.seller_sku, "from": 3, "to": 0}


def test_stock_set_on_hand_rolled_back_requests_nothing():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=3)
    EligibilityRequest.objects.all().delete()

    with pytest.raises(RuntimeError), transaction.atomic():
        stock_set_on_hand(store=store, listing=listing, on_hand=1, acting_user=None)
        raise RuntimeError("rolled back")

    assert _requests() == []
    assert Stock.objects.get().on_hand == 3


def test_stock_set_on_hand_refuses_below_reserved_and_writes_nothing():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=3, reserved=2)
    EligibilityRequest.objects.all().delete()

    with pytest.raises(ActionRefused, match="2 units of .* are reserved by open orders"):
        stock_set_on_hand(store=store, listing=listing, on_hand=1, acting_user=None)

    assert (_requests(), Stock.objects.get().on_hand, StoreEvent.objects.count()) == ([], 3, 0)


def test_stock_set_on_hand_refuses_another_sellers_listing():
    store = make_store()
    other = make_store()
    listing = make_listing(seller=other.seller)

    with pytest.raises(ActionRefused, match="is not sold by"):
        stock_set_on_hand(store=store, listing=listing, on_hand=1, acting_user=None)

    assert Stock.objects.count() == 0


def test_eligibility_recompute_task_runs_the_listing_scope():
    store = make_store()
    listing = make_listing(seller=store.seller)

    eligibility_recompute_task(listing_ids=[listing.pk])

    assert "out_of_stock" in result().reasons


def test_eligibility_recompute_task_with_nothing_to_do_writes_nothing():
    store = make_store()
    make_listing(seller=store.seller)

    eligibility_recompute_task()

    assert EligibilityResult.objects.count() == 0


def test_eligibility_recompute_all_covers_every_listing():
    store = make_store()
    make_listing(seller=store.seller)
    make_listing(seller=store.seller)

    eligibility_recompute_all()

    assert EligibilityResult.objects.count() == 2


def test_beat_schedule_has_the_sweeper_every_minute_and_a_nightly_full_run():
    schedule = settings.CELERY_BEAT_SCHEDULE

    assert schedule["eligibility-sweep"] == {"task": "retailers.eligibility_sweep", "schedule": 60.0}
    assert schedule["eligibility-requests-sweep"] == {"task": "retailers.eligibility_requests_sweep", "schedule": 2.0}
    assert schedule["eligibility-nightly"]["task"] == "retailers.eligibility_recompute_all"
    assert (schedule["eligibility-nightly"]["schedule"].hour, schedule["eligibility-nightly"]["schedule"].minute) == (
        {10},
        {15},
    )
