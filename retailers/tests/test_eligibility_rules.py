"""The eligibility rules as pure functions: no database."""

import datetime as dt
import zoneinfo

import pytest

from retailers.eligibility import (
    BIT,
    REASON_CODES,
    ListingFacts,
    Offer,
    ProgramLimitFacts,
    StoreFacts,
    bits_from_codes,
    codes_from_bits,
    evaluate,
    is_open,
    store_eligible_until,
    store_reason_bits,
)

LA = "America/Los_Angeles"
NY = "America/New_York"
PHOENIX = "America/Phoenix"
UTC = dt.UTC
ALL_DAY = {day: (dt.time(0, 0), dt.time(0, 0)) for day in range(7)}
LIMITS = ProgramLimitFacts(max_weight_grams=10_000, allowed_categories=frozenset({"apparel", "shoes"}))
SHIRT = ListingFacts(weight_grams=300, size_class="small", hazmat=False, category="apparel")
# Wednesday 2026-11-18 12:00 in Las Vegas (PST, UTC−8).
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=UTC)


def store(**fields) -> StoreFacts:
    defaults = {
        "id": 1,
        "name": "Sunset Apparel — Fashion Show",
        "status": "live",
        "time_zone": LA,
        "cutoff": dt.time(17, 0),
        "hours": ALL_DAY,
        "hourly_capacity": 12,
        "orders_last_hour": 0,
    }
    return StoreFacts(**{**defaults, **fields})


def verdict(*offers: Offer, listing: ListingFacts = SHIRT, driver_supply: bool = True, now=NOON_LA):
    return evaluate(listing=listing, offers=list(offers), limits=LIMITS, driver_supply=driver_supply, now=now)


def test_evaluate_eligible_with_todays_cutoff_as_until():
    result = verdict(Offer(store(), available=3))

    assert result.eligible is True
    assert result.reasons == ()
    assert result.hint == ""
    assert result.eligible_until == dt.datetime(2026, 11, 18, 17, 0, tzinfo=zoneinfo.ZoneInfo(LA))
    assert result.eligible_until == dt.datetime(2026, 11, 19, 1, 0, tzinfo=UTC)


def test_evaluate_no_store_gives_no_live_store():
    result = verdict()

    assert (result.eligible, result.reasons, result.hint, result.eligible_until) == (
        False,
        ("no_live_store",),
        "",
        None,
    )


@pytest.mark.parametrize("status", ["applied", "approved", "onboarding", "suspended", "rejected"])
def test_evaluate_store_not_live_gives_no_live_store(status):
    result = verdict(Offer(store(status=status), available=5))

    assert result.reasons == ("no_live_store",)


def test_evaluate_paused_store_gives_store_paused_and_resume_hint():
    result = verdict(Offer(store(status="paused"), available=5))

    assert result.reasons == ("store_paused",)
    assert result.hint == "resume same-day at Sunset Apparel — Fashion Show"
    assert result.eligible_until is None


def test_evaluate_out_of_stock_gives_restock_hint():
    result = verdict(Offer(store(), available=0))

    assert result.reasons == ("out_of_stock",)
    assert result.hint == "restock 1 unit at Sunset Apparel — Fashion Show"


def test_evaluate_everything_reserved_is_out_of_stock():
    result = verdict(Offer(store(), available=-1))

    assert result.reasons == ("out_of_stock",)


def test_evaluate_closed_day_gives_store_closed_without_hint():
    hours = {day: span for day, span in ALL_DAY.items() if day != 2}

    result = verdict(Offer(store(hours=hours), available=5))

    assert (result.reasons, result.hint) == (("store_closed",), "")


def test_evaluate_at_cutoff_gives_after_cutoff():
    five_pm_la = dt.datetime(2026, 11, 19, 1, 0, tzinfo=UTC)

    result = verdict(Offer(store(), available=5), now=five_pm_la)

    assert result.reasons == ("after_cutoff",)


def test_evaluate_one_minute_before_cutoff_is_eligible():
    result = verdict(Offer(store(), available=5), now=dt.datetime(2026, 11, 19, 0, 59, tzinfo=UTC))

    assert result.eligible is True


def test_evaluate_full_hour_gives_store_at_capacity():
    result = verdict(Offer(store(hourly_capacity=4, orders_last_hour=4), available=5))

    assert result.reasons == ("store_at_capacity",)


def test_evaluate_one_order_below_capacity_is_eligible():
    result = verdict(Offer(store(hourly_capacity=4, orders_last_hour=3), available=5))

    assert result.eligible is True


@pytest.mark.parametrize(
    ("listing", "reason"),
    [
        (ListingFacts(weight_grams=10_001, size_class="small", hazmat=False, category="apparel"), "too_heavy"),
        (ListingFacts(weight_grams=300, size_class="oversize", hazmat=False, category="apparel"), "oversize"),
        (ListingFacts(weight_grams=300, size_class="small", hazmat=True, category="apparel"), "hazmat"),
        (ListingFacts(weight_grams=300, size_class="small", hazmat=False, category="knives"), "category_excluded"),
    ],
)
def test_evaluate_listing_limits_give_their_reason_without_hint(listing, reason):
    result = verdict(Offer(store(), available=5), listing=listing)

    assert (result.eligible, result.reasons, result.hint) == (False, (reason,), "")


def test_evaluate_weight_at_the_limit_is_eligible():
    listing = ListingFacts(weight_grams=10_000, size_class="large", hazmat=False, category="shoes")

    assert verdict(Offer(store(), available=1), listing=listing).eligible is True


def test_evaluate_empty_category_list_allows_every_category():
    limits = ProgramLimitFacts(max_weight_grams=10_000)
    listing = ListingFacts(weight_grams=300, size_class="small", hazmat=False, category="garden")

    result = evaluate(listing=listing, offers=[Offer(store(), 1)], limits=limits, driver_supply=True, now=NOON_LA)

    assert result.eligible is True


def test_evaluate_no_driver_supply_gives_its_reason():
    result = verdict(Offer(store(), available=5), driver_supply=False)

    assert (result.reasons, result.hint) == (("no_driver_supply",), "")


def test_evaluate_lists_every_reason_that_applies():
    closed_paused = store(status="paused", hours={}, hourly_capacity=1, orders_last_hour=1)
    heavy_hazmat = ListingFacts(weight_grams=99_000, size_class="oversize", hazmat=True, category="fuel")
    after_cutoff = dt.datetime(2026, 11, 19, 2, 0, tzinfo=UTC)  # 18:00 local

    result = verdict(Offer(closed_paused, 0), listing=heavy_hazmat, driver_supply=False, now=after_cutoff)

    assert result.reasons == (
        "store_paused",
        "store_closed",
        "after_cutoff",
        "out_of_stock",
        "store_at_capacity",
        "too_heavy",
        "oversize",
        "hazmat",
        "category_excluded",
        "no_driver_supply",
    )
    assert result.hint == ""


def test_evaluate_one_passing_store_hides_other_stores_reasons():
    paused = store(id=1, status="paused")
    fine = store(id=2, name="Sunset Apparel — Kiosk")

    result = verdict(Offer(paused, 5), Offer(fine, 2))

    assert (result.eligible, result.reasons) == (True, ())


def test_evaluate_reasons_of_all_stores_when_none_passes():
    paused = store(id=1, status="paused", name="A")
    empty = store(id=2, name="B")

    result = verdict(Offer(paused, 5), Offer(empty, 0))

    assert result.reasons == ("store_paused", "out_of_stock")
    assert result.hint == "restock 1 unit at B"


def test_evaluate_restock_hint_names_the_first_store_by_id():
    result = verdict(Offer(store(id=7, name="Z"), 0), Offer(store(id=3, name="Y"), 0))

    assert result.hint == "restock 1 unit at Y"


def test_evaluate_two_changes_needed_gives_no_hint():
    result = verdict(Offer(store(status="paused"), available=0))

    assert (result.reasons, result.hint) == (("store_paused", "out_of_stock"), "")


def test_evaluate_store_fix_with_listing_reason_gives_no_hint():
    heavy = ListingFacts(weight_grams=99_000, size_class="small", hazmat=False, category="apparel")

    result = verdict(Offer(store(), available=0), listing=heavy)

    assert (result.reasons, result.hint) == (("out_of_stock", "too_heavy"), "")


def test_evaluate_not_live_store_is_ignored_beside_a_live_one():
    result = verdict(Offer(store(id=1, status="suspended"), 5), Offer(store(id=2), 0))

    assert result.reasons == ("out_of_stock",)


def test_evaluate_eligible_until_is_the_latest_cutoff_of_passing_stores():
    early = store(id=1, cutoff=dt.time(15, 0))
    late = store(id=2, cutoff=dt.time(18, 30))
    closed = store(id=3, cutoff=dt.time(20, 0), hours={})

    result = verdict(Offer(early, 1), Offer(late, 1), Offer(closed, 1))

    assert result.eligible_until == dt.datetime(2026, 11, 18, 18, 30, tzinfo=zoneinfo.ZoneInfo(LA))


# Opening hours across midnight: Friday 18:00 → 02:00 Saturday.
LATE_FRIDAY = {4: (dt.time(18, 0), dt.time(2, 0))}


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (dt.datetime(2026, 11, 20, 17, 59), False),  # Friday before opening
        (dt.datetime(2026, 11, 20, 18, 0), True),  # Friday opening
        (dt.datetime(2026, 11, 20, 23, 59), True),
        (dt.datetime(2026, 11, 21, 0, 0), True),  # Saturday, still Friday's span
        (dt.datetime(2026, 11, 21, 1, 59), True),
        (dt.datetime(2026, 11, 21, 2, 0), False),  # closes at 02:00
        (dt.datetime(2026, 11, 21, 18, 0), False),  # Saturday has no hours
        (dt.datetime(2026, 11, 20, 1, 0), False),  # Friday night before: Thursday has no span
    ],
)
def test_is_open_hours_across_midnight(local, expected):
    assert is_open(LATE_FRIDAY, local) is expected


def test_is_open_regular_day_closes_at_closing_time():
    hours = {0: (dt.time(10, 0), dt.time(21, 0))}

    assert [is_open(hours, dt.datetime(2026, 11, 16, h, m)) for h, m in [(9, 59), (10, 0), (20, 59), (21, 0)]] == [
        False,
        True,
        True,
        False,
    ]


def test_store_reason_bits_open_after_midnight_but_after_cutoff_on_the_evening():
    late = store(hours=LATE_FRIDAY, cutoff=dt.time(20, 0))
    saturday_1am_la = dt.datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    friday_9pm_la = dt.datetime(2026, 11, 21, 5, 0, tzinfo=UTC)

    assert store_reason_bits(late, now=saturday_1am_la) == 0
    assert codes_from_bits(store_reason_bits(late, now=friday_9pm_la)) == ["after_cutoff"]


def test_store_reason_bits_arizona_has_no_daylight_saving():
    chandler = store(time_zone=PHOENIX, hours={day: (dt.time(10, 0), dt.time(21, 0)) for day in range(7)})
    # 16:59 and 17:00 MST are 23:59 and 00:00 UTC in summer and in winter alike.
    for month, day in [(1, 14), (7, 15)]:
        before = dt.datetime(2026, month, day, 23, 59, tzinfo=UTC)
        at_cutoff = before + dt.timedelta(minutes=1)
        assert store_reason_bits(chandler, now=before) == 0
        assert codes_from_bits(store_reason_bits(chandler, now=at_cutoff)) == ["after_cutoff"]


def test_store_eligible_until_arizona_is_utc_minus_seven_in_july():
    chandler = store(time_zone=PHOENIX)

    until = store_eligible_until(chandler, now=dt.datetime(2026, 7, 15, 18, 0, tzinfo=UTC))

    assert until.astimezone(UTC) == dt.datetime(2026, 7, 16, 0, 0, tzinfo=UTC)


def test_store_eligible_until_las_vegas_is_utc_minus_seven_in_july():
    until = store_eligible_until(store(), now=dt.datetime(2026, 7, 15, 18, 0, tzinfo=UTC))

    assert until.astimezone(UTC) == dt.datetime(2026, 7, 16, 0, 0, tzinfo=UTC)


def test_store_eligible_until_spring_forward_day_in_los_angeles():
    # 2026-03-08: clocks jump from 02:00 PST to 03:00 PDT; 17:00 that day is PDT.
    until = store_eligible_until(store(), now=dt.datetime(2026, 3, 8, 12, 0, tzinfo=UTC))

    assert until.astimezone(UTC) == dt.datetime(2026, 3, 9, 0, 0, tzinfo=UTC)


def test_store_eligible_until_fall_back_day_in_new_york():
    # 2026-11-01: clocks go back from 02:00 EDT to 01:00 EST; 17:00 that day is EST.
    until = store_eligible_until(store(time_zone=NY), now=dt.datetime(2026, 11, 1, 15, 0, tzinfo=UTC))

    assert until.astimezone(UTC) == dt.datetime(2026, 11, 1, 22, 0, tzinfo=UTC)


def test_store_eligible_until_is_the_closing_time_when_the_store_closes_before_its_cutoff():
    # Wednesday: open 10:00-16:00 with a 17:00 cutoff; no same-day order is taken after 16:00.
    early = store(hours={2: (dt.time(10, 0), dt.time(16, 0))})

    until = store_eligible_until(early, now=NOON_LA)

    assert until == dt.datetime(2026, 11, 18, 16, 0, tzinfo=zoneinfo.ZoneInfo(LA))


def test_store_eligible_until_after_midnight_is_the_end_of_last_nights_opening():
    # Tuesday 18:00 to Wednesday 02:00; at 00:30 on Wednesday same-day ends at 02:00, not 17:00.
    late = store(hours={1: (dt.time(18, 0), dt.time(2, 0)), 2: (dt.time(18, 0), dt.time(2, 0))})

    until = store_eligible_until(late, now=dt.datetime(2026, 11, 18, 8, 30, tzinfo=UTC))

    assert until == dt.datetime(2026, 11, 18, 2, 0, tzinfo=zoneinfo.ZoneInfo(LA))


@pytest.mark.parametrize(
    ("hours", "why"),
    [
        ({2: (dt.time(10, 0), dt.time(2, 0))}, "open past midnight into Thursday"),
        ({2: (dt.time(10, 0), dt.time(17, 0))}, "closing at the cutoff itself"),
        ({2: (dt.time(10, 0), dt.time(21, 0))}, "closing after the cutoff"),
        (ALL_DAY, "open round the clock"),
    ],
)
def test_store_eligible_until_is_the_cutoff_when_the_store_stays_open_until_then(hours, why):
    until = store_eligible_until(store(hours=hours), now=NOON_LA)

    assert until == dt.datetime(2026, 11, 18, 17, 0, tzinfo=zoneinfo.ZoneInfo(LA)), why


def test_store_reason_bits_spring_forward_morning_in_los_angeles():
    opens_at_three = store(hours={6: (dt.time(3, 0), dt.time(22, 0))})
    # 09:59 UTC is 01:59 PST; one minute later it is 03:00 PDT, not 02:00.
    before = dt.datetime(2026, 3, 8, 9, 59, tzinfo=UTC)

    assert codes_from_bits(store_reason_bits(opens_at_three, now=before)) == ["store_closed"]
    assert store_reason_bits(opens_at_three, now=before + dt.timedelta(minutes=1)) == 0


def test_store_reason_bits_fall_back_night_in_new_york_stays_open_through_repeated_hour():
    # Saturday 2026-10-31 20:00 → Sunday 02:00; the 01:00–02:00 hour happens twice.
    late = store(time_zone=NY, hours={5: (dt.time(20, 0), dt.time(2, 0))}, cutoff=dt.time(23, 59))
    first_one_thirty = dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second_one_thirty = dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    two_est = dt.datetime(2026, 11, 1, 7, 0, tzinfo=UTC)

    assert store_reason_bits(late, now=first_one_thirty) == 0
    assert store_reason_bits(late, now=second_one_thirty) == 0
    assert codes_from_bits(store_reason_bits(late, now=two_est)) == ["store_closed"]


def test_store_reason_bits_cutoff_on_fall_back_day_in_los_angeles():
    # 2026-11-01 is PST from 02:00 on: the 17:00 cutoff is 01:00 UTC the next day.
    before = dt.datetime(2026, 11, 2, 0, 59, tzinfo=UTC)

    assert store_reason_bits(store(), now=before) == 0
    assert codes_from_bits(store_reason_bits(store(), now=before + dt.timedelta(minutes=1))) == ["after_cutoff"]


def test_evaluate_refuses_naive_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        verdict(Offer(store(), 1), now=dt.datetime(2026, 11, 18, 12, 0))


def test_reason_codes_round_trip_through_bits():
    assert codes_from_bits(bits_from_codes(REASON_CODES)) == list(REASON_CODES)
    assert BIT["no_live_store"] == 1
    assert BIT["no_driver_supply"] == 1024
