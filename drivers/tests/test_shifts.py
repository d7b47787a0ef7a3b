"""Scheduled shifts: the services that schedule and cancel them, the driver supply they make (a
driver whose shift covers now counts while not online) and the eligibility it feeds."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import IntegrityError, transaction

from drivers.lifecycle import DriverStatus
from drivers.models import DriverEvent, DriverShift
from drivers.selectors import markets_with_driver_supply
from drivers.services import driver_shift_cancel, driver_shift_schedule
from drivers.tests.factories import make_driver, set_documents_expiry
from portal.errors import ActionRefused
from portal.tests.factories import make_listing, make_mall, make_market, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute, eligibility_sweep_run
from retailers.models import EligibilityRequest, EligibilityResult
from retailers.models import EligibilityRequestKind as Kind

pytestmark = pytest.mark.django_db
LA = zoneinfo.ZoneInfo("America/Los_Angeles")
PHOENIX = zoneinfo.ZoneInfo("America/Phoenix")
# Tuesday 2026-12-01, 10:00 in Los Angeles (PST, UTC-8).
NOW = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _driver(**fields):
    return make_driver(documents_valid_until=dt.date(2027, 12, 31), **fields)


def _shift(driver, starts_at, ends_at) -> DriverShift:
    return DriverShift.objects.create(driver=driver, market=driver.home_market, starts_at=starts_at, ends_at=ends_at)


def _refusal(**kwargs) -> str:
    with pytest.raises(ActionRefused) as refused:
        driver_shift_schedule(**kwargs)
    return refused.value.message


# --- driver_shift_schedule -------------------------------------------------------------------


def test_driver_shift_schedule_creates_the_shift_in_the_home_market_with_an_event():
    driver = _driver()

    shift = driver_shift_schedule(driver=driver, starts_at=NOW + HOUR, ends_at=NOW + 5 * HOUR, now=NOW)

    assert list(DriverShift.objects.values_list("driver", "market", "starts_at", "ends_at", "created_at")) == [
        (driver.pk, driver.home_market_id, NOW + HOUR, NOW + 5 * HOUR, NOW)
    ]
    assert shift.pk == DriverShift.objects.get().pk
    assert list(DriverEvent.objects.filter(driver=driver).values_list("type", "data")) == [
        (
            "driver.shift_scheduled",
            {"shift": shift.pk, "starts_at": (NOW + HOUR).isoformat(), "ends_at": (NOW + 5 * HOUR).isoformat()},
        )
    ]


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "message"),
    [
        (NOW + HOUR, NOW + HOUR, "The shift must end after it starts."),
        (NOW + 2 * HOUR, NOW + HOUR, "The shift must end after it starts."),
        (NOW + HOUR, NOW + 13 * HOUR + dt.timedelta(seconds=1), "A shift can last at most 12 hours."),
        (NOW - 3 * HOUR, NOW, "That shift has already ended: pick a time to come."),
        (
            NOW + dt.timedelta(days=14, seconds=1),
            NOW + dt.timedelta(days=14, hours=2),
            "Shifts can be scheduled at most 14 days ahead.",
        ),
    ],
    ids=["ends-at-start", "ends-before-start", "longer-than-12h", "ended", "too-far-ahead"],
)
def test_driver_shift_schedule_refuses_bad_times_and_writes_nothing(starts_at, ends_at, message):
    driver = _driver()

    assert _refusal(driver=driver, starts_at=starts_at, ends_at=ends_at, now=NOW) == message
    assert (DriverShift.objects.count(), DriverEvent.objects.count()) == (0, 0)


def test_driver_shift_schedule_accepts_the_limits():
    driver = _driver()

    twelve = driver_shift_schedule(driver=driver, starts_at=NOW - HOUR, ends_at=NOW + 11 * HOUR, now=NOW)
    furthest = dt.timedelta(days=14)
    last = driver_shift_schedule(driver=driver, starts_at=NOW + furthest, ends_at=NOW + furthest + HOUR, now=NOW)

    assert list(DriverShift.objects.all()) == [twelve, last]


def test_driver_shift_schedule_refuses_an_overlap_naming_the_other_shift_in_local_time():
    driver = _driver(market=make_market(time_zone="America/Los_Angeles"))
    # 17:00–21:00 in Los Angeles.
    _shift(driver, NOW + 7 * HOUR, NOW + 11 * HOUR)

    message = _refusal(driver=driver, starts_at=NOW + 10 * HOUR, ends_at=NOW + 12 * HOUR, now=NOW)

    assert message == "That overlaps your shift Tue Dec 1, 5:00 PM – 9:00 PM."
    assert DriverShift.objects.count() == 1


def test_driver_shift_schedule_allows_back_to_back_shifts_and_other_drivers_at_the_same_time():
    driver, other = _driver(), _driver()
    _shift(driver, NOW + HOUR, NOW + 3 * HOUR)

    after = driver_shift_schedule(driver=driver, starts_at=NOW + 3 * HOUR, ends_at=NOW + 4 * HOUR, now=NOW)
    before = driver_shift_schedule(driver=driver, starts_at=NOW, ends_at=NOW + HOUR, now=NOW)
    others = driver_shift_schedule(driver=other, starts_at=NOW + HOUR, ends_at=NOW + 3 * HOUR, now=NOW)

    assert DriverShift.objects.count() == 4
    assert (after.driver, before.driver, others.driver) == (driver, driver, other)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (DriverStatus.INACTIVE, "Your account is paused: you cannot schedule shifts."),
        (DriverStatus.SCREENING, "Your account is screening: you cannot schedule shifts."),
        (DriverStatus.DEACTIVATED, "Your account is deactivated: you cannot schedule shifts."),
    ],
)
def test_driver_shift_schedule_refuses_a_driver_who_is_not_active(status, message):
    driver = _driver(status=status)

    assert _refusal(driver=driver, starts_at=NOW + HOUR, ends_at=NOW + 2 * HOUR, now=NOW) == message
    assert DriverShift.objects.count() == 0


def test_driver_shift_schedule_reads_the_status_of_the_stored_driver_not_the_one_in_hand():
    driver = _driver()
    stale = type(driver).objects.get(pk=driver.pk)
    type(driver).objects.filter(pk=driver.pk).update(status=DriverStatus.INACTIVE, status_reason="Paused")

    message = _refusal(driver=stale, starts_at=NOW + HOUR, ends_at=NOW + 2 * HOUR, now=NOW)

    assert message == "Your account is paused: you cannot schedule shifts."


def test_driver_shift_keeps_its_market_when_the_driver_moves():
    first, second = make_market(), make_market()
    driver = _driver(market=first)
    shift = driver_shift_schedule(driver=driver, starts_at=NOW + HOUR, ends_at=NOW + 2 * HOUR, now=NOW)

    type(driver).objects.filter(pk=driver.pk).update(home_market=second)

    shift.refresh_from_db()
    assert shift.market == first


def test_driver_shift_database_refuses_an_end_not_after_the_start():
    driver = _driver()

    with pytest.raises(IntegrityError), transaction.atomic():
        _shift(driver, NOW, NOW)


# --- driver_shift_cancel ---------------------------------------------------------------------


def test_driver_shift_cancel_deletes_a_shift_not_yet_started():
    driver = _driver()
    shift = _shift(driver, NOW + HOUR, NOW + 2 * HOUR)

    kept = driver_shift_cancel(driver=driver, shift=shift, now=NOW)

    assert (kept, DriverShift.objects.count()) == (None, 0)
    assert list(DriverEvent.objects.values_list("type", flat=True)) == ["driver.shift_cancelled"]


def test_driver_shift_cancel_of_a_shift_under_way_ends_it_now():
    driver = _driver()
    shift = _shift(driver, NOW - HOUR, NOW + 2 * HOUR)

    kept = driver_shift_cancel(driver=driver, shift=shift, now=NOW)

    assert list(DriverShift.objects.values_list("pk", "starts_at", "ends_at")) == [(shift.pk, NOW - HOUR, NOW)]
    assert kept.ends_at == NOW


def test_driver_shift_cancel_of_a_shift_starting_this_instant_deletes_it():
    driver = _driver()
    shift = _shift(driver, NOW, NOW + HOUR)

    assert driver_shift_cancel(driver=driver, shift=shift, now=NOW) is None
    assert DriverShift.objects.count() == 0


def test_driver_shift_cancel_refuses_a_shift_that_has_ended():
    driver = _driver()
    shift = _shift(driver, NOW - 2 * HOUR, NOW)

    with pytest.raises(ActionRefused) as refused:
        driver_shift_cancel(driver=driver, shift=shift, now=NOW)

    assert refused.value.message == "That shift has already ended."
    assert list(DriverShift.objects.values_list("ends_at", flat=True)) == [NOW]
    assert DriverEvent.objects.count() == 0


def test_driver_shift_cancel_refuses_another_drivers_shift():
    driver, other = _driver(), _driver()
    shift = _shift(other, NOW + HOUR, NOW + 2 * HOUR)

    with pytest.raises(ActionRefused) as refused:
        driver_shift_cancel(driver=driver, shift=shift, now=NOW)

    assert refused.value.message == "That is not one of your shifts."
    assert DriverShift.objects.count() == 1


# --- supply ------------------------------------------------------------------------------------


def test_supply_counts_a_driver_online_or_with_a_shift_covering_now():
    online_market, scheduled_market, neither = make_market(), make_market(), make_market()
    _driver(market=online_market, online=True)
    _shift(_driver(market=scheduled_market), NOW - HOUR, NOW + HOUR)
    _driver(market=neither)

    assert markets_with_driver_supply(now=NOW) == {online_market.pk, scheduled_market.pk}


def test_supply_counts_a_shift_from_its_start_until_just_before_its_end():
    driver = _driver()
    _shift(driver, NOW, NOW + HOUR)
    market = driver.home_market_id

    assert markets_with_driver_supply(now=NOW - dt.timedelta(microseconds=1)) == set()
    assert markets_with_driver_supply(now=NOW) == {market}
    assert markets_with_driver_supply(now=NOW + HOUR - dt.timedelta(microseconds=1)) == {market}
    assert markets_with_driver_supply(now=NOW + HOUR) == set()


def test_supply_ignores_a_scheduled_driver_with_an_expired_document():
    driver = _driver()
    _shift(driver, NOW - HOUR, NOW + HOUR)
    set_documents_expiry(driver, dt.date(2026, 11, 30), kind="insurance")

    assert markets_with_driver_supply(now=NOW) == set()


@pytest.mark.parametrize("status", [DriverStatus.INACTIVE, DriverStatus.DEACTIVATED, DriverStatus.SCREENING])
def test_supply_ignores_a_scheduled_driver_who_is_not_active(status):
    driver = _driver(status=status)
    _shift(driver, NOW - HOUR, NOW + HOUR)

    assert markets_with_driver_supply(now=NOW) == set()


def test_supply_counts_a_shift_in_its_own_market_only():
    home, other = make_market(), make_market()
    driver = _driver(market=home)
    DriverShift.objects.create(driver=driver, market=other, starts_at=NOW - HOUR, ends_at=NOW + HOUR)

    assert markets_with_driver_supply(now=NOW) == {other.pk}


def test_supply_ignores_a_shift_that_ended_or_was_cancelled_under_way():
    ended, cancelled = _driver(), _driver()
    _shift(ended, NOW - 3 * HOUR, NOW - HOUR)
    under_way = _shift(cancelled, NOW - HOUR, NOW + HOUR)
    driver_shift_cancel(driver=cancelled, shift=under_way, now=NOW - dt.timedelta(minutes=1))

    assert markets_with_driver_supply(now=NOW) == set()


def test_supply_counts_one_market_once_for_online_and_scheduled_drivers():
    market = make_market()
    _driver(market=market, online=True)
    _shift(_driver(market=market), NOW - HOUR, NOW + HOUR)
    _shift(_driver(market=market), NOW - HOUR, NOW + HOUR)

    from drivers.selectors import driver_supply_market_ids

    assert list(driver_supply_market_ids(now=NOW)) == [market.pk]


# --- eligibility follows ---------------------------------------------------------------------


def _market_with_a_mall():
    market = make_market()
    market.mall = make_mall(market=market)
    return market


def _requests() -> list[tuple[int, int]]:
    return sorted(EligibilityRequest.objects.values_list("kind", "object_id"))


def test_scheduling_a_shift_covering_now_requests_the_market_recompute():
    market = _market_with_a_mall()
    driver = _driver(market=market)
    EligibilityRequest.objects.all().delete()

    driver_shift_schedule(driver=driver, starts_at=NOW - HOUR, ends_at=NOW + HOUR, now=NOW)

    assert _requests() == [(Kind.MALL, market.mall.pk)]


def test_scheduling_a_later_shift_requests_nothing():
    market = _market_with_a_mall()
    driver = _driver(market=market)
    EligibilityRequest.objects.all().delete()

    driver_shift_schedule(driver=driver, starts_at=NOW + HOUR, ends_at=NOW + 2 * HOUR, now=NOW)

    assert _requests() == []


def test_cancelling_a_shift_covering_now_requests_the_recompute_and_a_later_one_nothing():
    market = _market_with_a_mall()
    driver = _driver(market=market)
    later = _shift(driver, NOW + 2 * HOUR, NOW + 3 * HOUR)
    under_way = _shift(driver, NOW - HOUR, NOW + HOUR)
    EligibilityRequest.objects.all().delete()

    driver_shift_cancel(driver=driver, shift=later, now=NOW)
    after_later = _requests()
    driver_shift_cancel(driver=driver, shift=under_way, now=NOW)

    assert (after_later, _requests()) == ([], [(Kind.MALL, market.mall.pk)])


def test_sweep_makes_a_listing_eligible_while_a_shift_covers_now_and_not_after():
    store = make_store(mall=make_mall(time_zone="America/Los_Angeles"), same_day_cutoff=dt.time(23, 30))
    make_stock(store=store, listing=make_listing(seller=store.seller))
    driver = _driver(market=store.mall.market)
    at = dt.datetime(2026, 12, 1, 17, 59, tzinfo=LA)

    with time_machine.travel(at, tick=False) as traveller:
        eligibility_recompute()
        before = EligibilityResult.objects.get().reasons
        driver_shift_schedule(
            driver=driver, starts_at=at.replace(hour=18, minute=0), ends_at=at.replace(hour=22, minute=0), now=at
        )
        traveller.move_to(dt.datetime(2026, 12, 1, 18, 0, 30, tzinfo=LA))
        eligibility_sweep_run(now=dt.datetime.now(dt.UTC))
        during = EligibilityResult.objects.get().reasons
        traveller.move_to(dt.datetime(2026, 12, 1, 22, 0, 30, tzinfo=LA))
        eligibility_sweep_run(now=dt.datetime.now(dt.UTC))
        after = EligibilityResult.objects.get().reasons

    assert (before, during, after) == (["no_driver_supply"], [], ["no_driver_supply"])


# --- local time --------------------------------------------------------------------------------


def test_shift_local_label_in_phoenix_and_los_angeles_across_the_dst_change():
    phoenix = _driver(market=make_market(time_zone="America/Phoenix"))
    angeles = _driver(market=make_market(time_zone="America/Los_Angeles"))
    # Friday 2026-10-30 and Tuesday 2026-11-03 00:00 UTC: Los Angeles left daylight time on Nov 1.
    october = dt.datetime(2026, 10, 30, 0, 0, tzinfo=dt.UTC)
    november = dt.datetime(2026, 11, 3, 0, 0, tzinfo=dt.UTC)

    labels = [
        _shift(driver, start, start + 4 * HOUR).local_label()
        for start in (october, november)
        for driver in (phoenix, angeles)
    ]

    assert labels == [
        "Thu Oct 29, 5:00 PM – 9:00 PM",
        "Thu Oct 29, 5:00 PM – 9:00 PM",
        "Mon Nov 2, 5:00 PM – 9:00 PM",
        "Mon Nov 2, 4:00 PM – 8:00 PM",
    ]


def test_shift_local_label_names_the_next_day_of_a_shift_past_midnight():
    driver = _driver(market=make_market(time_zone="America/Phoenix"))
    start = dt.datetime(2026, 11, 24, 22, 0, tzinfo=PHOENIX)

    assert _shift(driver, start, start + 4 * HOUR).local_label() == "Tue Nov 24, 10:00 PM – Wed Nov 25, 2:00 AM"


def test_pausing_or_resuming_a_driver_on_a_shift_covering_now_requests_the_recompute():
    from drivers.services import driver_approve, driver_pause

    market = _market_with_a_mall()
    driver = _driver(market=market)
    _shift(driver, dt.datetime.now(dt.UTC) - HOUR, dt.datetime.now(dt.UTC) + HOUR)
    EligibilityRequest.objects.all().delete()

    driver_pause(driver=driver, acting_user=None, reason="Vehicle in the shop")
    after_pause = _requests()
    EligibilityRequest.objects.all().delete()
    driver_approve(driver=driver, acting_user=None)

    assert (after_pause, _requests()) == ([(Kind.MALL, market.mall.pk)], [(Kind.MALL, market.mall.pk)])
