"""On the real database: exactly one driver wins a route, two route builders never route an
order twice, and a forfeit racing a handoff leaves every package in exactly one place."""

import collections
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from drivers import services
from drivers.models import (
    Answer,
    Driver,
    Handoff,
    MarketPaySettings,
    Offer,
    OfferRecipient,
    RouteStop,
    StopStatus,
)
from drivers.tests.factories import make_driver, make_ready_order
from orders.lifecycle import OrderStatus
from portal.errors import ActionRefused
from portal.notifications.models import Notification
from portal.tests.factories import make_mall, make_store

DRIVERS = 24


def _offered_to_a_wave_of(size: int, *, online: int):
    """A ready order's route offered with a first wave of `size`, `online` drivers in the
    market: (drivers, route, offer)."""
    mall = make_mall()
    MarketPaySettings.objects.create(market=mall.market, first_wave_size=size)
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)
    drivers = [make_driver(market=mall.market, online=True) for _ in range(online)]
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    return drivers, route, route.offers.get()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_offer_accept_concurrent_drivers_one_wins_rest_already_taken():
    drivers, route, offer = _offered_to_a_wave_of(DRIVERS, online=DRIVERS)
    assert OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).count() == DRIVERS
    barrier = threading.Barrier(DRIVERS)
    results: dict[int, str] = {}

    def accept(driver):
        try:
            barrier.wait()
            services.offer_accept(offer=Offer.objects.get(pk=offer.pk), driver=driver)
            results[driver.pk] = "won"
        except ActionRefused as refused:
            results[driver.pk] = refused.message
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(driver,)) for driver in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = sorted(results.values())
    assert outcomes.count("won") == 1
    assert outcomes.count("Sorry, this route was already taken by another driver.") == DRIVERS - 1
    winner = next(pk for pk, outcome in results.items() if outcome == "won")
    offer.refresh_from_db()
    assert offer.driver_id == winner
    assert Offer.objects.filter(route=route, status="accepted").count() == 1
    answers = sorted(OfferRecipient.objects.filter(offer=offer).values_list("answer", flat=True))
    assert answers.count(Answer.ACCEPTED) == 1
    assert answers.count(Answer.ACCEPTED) + answers.count(Answer.TAKEN) + answers.count(Answer.LATE) == DRIVERS


def _race(*calls) -> list[object]:
    """Runs each call in its own thread (own connection) from one barrier; returns what each
    returned or the ActionRefused it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except ActionRefused as refused:
            results[index] = refused
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_route_builders_at_once_never_route_an_order_twice():
    mall = make_mall()
    store = make_store(mall=mall)
    orders = [
        make_ready_order(store=store, latitude=mall.latitude + Decimal(f"{n * 0.003:.6f}"), longitude=mall.longitude)
        for n in range(30)
    ]
    for _ in range(3):
        make_driver(market=mall.market, online=True)
    now = timezone.now()

    _race(*(lambda: services.routes_build_for_mall(mall=mall, now=now, time_limit_s=0.3) for _ in range(2)))

    per_order = collections.Counter(RouteStop.objects.filter(is_current=True).values_list("order_id", flat=True))
    assert set(per_order.values()) <= {1}
    # Whatever both skipped (held by the other at that moment) the next build routes.
    services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.3)
    per_order = collections.Counter(RouteStop.objects.filter(is_current=True).values_list("order_id", flat=True))
    assert per_order == dict.fromkeys((order.pk for order in orders), 1)
    assert set(Offer.objects.values_list("route_id", flat=True)) == set(
        RouteStop.objects.filter(is_current=True).values_list("route_id", flat=True)
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_forfeit_racing_handoff_one_wins_no_package_lost(round_):
    mall = make_mall()
    first, second = make_store(mall=mall), make_store(mall=mall)
    one = make_ready_order(store=first, latitude=Decimal("36.150000"), longitude=mall.longitude)
    two = make_ready_order(store=second, packages=2, latitude=Decimal("36.152000"), longitude=mall.longitude)
    driver, _other = (make_driver(market=mall.market, online=True) for _ in range(2))
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    services.handoff_confirm_packages(
        store=first, code=offer.pickup_code, labels=[p.label_code for p in one.packages.all()], acting_user=None
    )
    labels = sorted(package.label_code for package in two.packages.all())

    forfeit, handoff = _race(
        lambda: services.offer_forfeit(offer=Offer.objects.get(pk=offer.pk), driver=driver, reason="Full car"),
        lambda: services.handoff_confirm_packages(
            store=second, code=offer.pickup_code, labels=labels, acting_user=None
        ),
    )

    # Exactly one wins; the loser is refused with a clear message.
    assert [isinstance(result, ActionRefused) for result in (forfeit, handoff)] in ([False, True], [True, False])
    two.refresh_from_db()
    [stop] = RouteStop.objects.filter(order=two, is_current=True)
    handed = [label for row in Handoff.objects.filter(store=second) for label in row.labels]
    if isinstance(handoff, Handoff):
        assert str(forfeit) == "You already picked up every package: finish the route or report a problem."
        assert (stop.route_id, stop.status, two.status) == (route.pk, StopStatus.PICKED_UP, OrderStatus.PICKED_UP)
        assert handed == labels
    else:
        assert forfeit.route.split_from_id == route.pk
        assert handoff.code == "wrong-store"
        assert (stop.route_id, stop.status, two.status) == (forfeit.route_id, StopStatus.PENDING, OrderStatus.READY)
        assert handed == []
    # Every package of the second store is in exactly one place: the driver's car or the new route.
    assert two.packages.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_driver_shift_schedule_concurrent_overlapping_shifts_one_is_kept():
    import datetime as dt

    from drivers.models import DriverShift

    driver = make_driver()
    now = timezone.now()
    starts = [now + dt.timedelta(hours=1, minutes=10 * n) for n in range(6)]

    def schedule(starts_at):
        return lambda: services.driver_shift_schedule(
            driver=driver, starts_at=starts_at, ends_at=starts_at + dt.timedelta(hours=2), now=now
        )

    results = _race(*(schedule(starts_at) for starts_at in starts))

    assert DriverShift.objects.count() == 1
    refused = [result for result in results if isinstance(result, ActionRefused)]
    assert len(refused) == 5
    assert all(result.code == "overlap" for result in refused)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_offer_accept_of_two_routes_at_once_by_one_driver_gives_them_one(round_):
    mall = make_mall()
    MarketPaySettings.objects.create(market=mall.market, max_stops=1)
    store = make_store(mall=mall)
    for latitude in ("36.150000", "36.160000"):
        make_ready_order(store=store, latitude=Decimal(latitude), longitude=mall.longitude)
    driver = make_driver(market=mall.market, online=True)
    routes = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offers = [route.offers.get() for route in routes]
    assert len(offers) == 2
    assert OfferRecipient.objects.filter(offer__in=offers, driver=driver, answer=Answer.PENDING).count() == 2

    results = _race(
        *(
            lambda offer=offer: services.offer_accept(offer=Offer.objects.get(pk=offer.pk), driver=driver)
            for offer in offers
        )
    )

    refused = [result for result in results if isinstance(result, ActionRefused)]
    assert [result.message for result in refused] == ["Finish your current route before taking another."]
    assert Offer.objects.filter(driver=driver, status="accepted").count() == 1
    assert RouteStop.objects.filter(route__driver=driver).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_offer_accept_double_tap_racing_itself_gives_the_driver_the_route_once(round_):
    mall = make_mall()
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)
    driver = make_driver(market=mall.market, online=True)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()

    results = _race(*(lambda: services.offer_accept(offer=Offer.objects.get(pk=offer.pk), driver=driver) for _ in "ab"))

    assert [isinstance(result, Offer) for result in results] == [True, True]
    assert list(Offer.objects.filter(route=route).values_list("status", "driver")) == [("accepted", driver.pk)]
    assert driver.events.filter(type="driver.offer_accepted").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(10))
@pytest.mark.parametrize("stop", ["deactivate", "pause"])
def test_offer_accept_racing_a_deactivation_or_pause_never_leaves_a_stopped_driver_holding_a_route(round_, stop):
    from drivers.lifecycle import DriverStatus
    from drivers.models import Route

    mall = make_mall()
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)
    driver = make_driver(market=mall.market, online=True)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    halt = services.driver_deactivate if stop == "deactivate" else services.driver_pause

    accepted, halted = _race(
        lambda: services.offer_accept(offer=Offer.objects.get(pk=offer.pk), driver=driver),
        lambda: halt(driver=driver.__class__.objects.get(pk=driver.pk), acting_user=None, reason="Complaint"),
    )

    driver.refresh_from_db()
    holds = Route.objects.filter(driver=driver, status="assigned").exists()
    stopped = DriverStatus.DEACTIVATED if stop == "deactivate" else DriverStatus.INACTIVE
    # Either the accept won (the driver stays active, the stop is refused as busy) or the stop
    # won (the accept is refused): never a stopped driver on a route.
    assert (driver.status, holds) in [(DriverStatus.ACTIVE, True), (stopped, False)], (accepted, halted)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_half_the_wave_going_offline_while_the_other_half_declines_widens_the_offer_once():
    drivers, _route, offer = _offered_to_a_wave_of(DRIVERS, online=DRIVERS + 1)
    wave = list(OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).values_list("driver", flat=True))
    assert len(wave) == DRIVERS
    by_pk = {driver.pk: driver for driver in drivers}
    leaving, declining = [by_pk[pk] for pk in wave[::2]], [by_pk[pk] for pk in wave[1::2]]

    results = _race(
        *(lambda driver=driver: services.driver_go_offline(driver=driver, acting_user=None) for driver in leaving),
        *(
            lambda driver=driver: services.offer_decline(offer=Offer.objects.get(pk=offer.pk), driver=driver)
            for driver in declining
        ),
    )

    assert not [result for result in results if isinstance(result, ActionRefused)]
    offer.refresh_from_db()
    # Everyone in the first wave answered or left: the second wave went out, once.
    assert (offer.status, offer.wave) == ("open", 2)
    answers = collections.Counter(OfferRecipient.objects.filter(offer=offer).values_list("answer", flat=True))
    assert answers == {Answer.OFFLINE: DRIVERS // 2, Answer.DECLINED: DRIVERS // 2, Answer.PENDING: 1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_operator_giving_a_route_while_the_wave_accepts_leaves_it_with_the_operators_choice():
    drivers, route, offer = _offered_to_a_wave_of(DRIVERS, online=DRIVERS + 1)
    wave = set(OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).values_list("driver", flat=True))
    [chosen] = [driver for driver in drivers if driver.pk not in wave]
    accepting = [driver for driver in drivers if driver.pk in wave]

    results = _race(
        lambda: services.route_assign(route=route, driver=chosen, acting_user=None),
        *(
            lambda driver=driver: services.offer_accept(offer=Offer.objects.get(pk=offer.pk), driver=driver)
            for driver in accepting
        ),
    )

    # The operator's choice stands whichever came first: an accept that got in before it was
    # taken back (forfeited, and that driver told), every other accept told it was taken.
    assert not isinstance(results[0], ActionRefused)
    assert list(Offer.objects.filter(route=route, status="accepted").values_list("driver", flat=True)) == [chosen.pk]
    route.refresh_from_db()
    assert (route.status, route.driver_id) == ("assigned", chosen.pk)
    refused = [result.message for result in results[1:] if isinstance(result, ActionRefused)]
    assert set(refused) == {"Sorry, this route was already taken by another driver."}
    taken_back = list(Offer.objects.filter(route=route, status="forfeited").values_list("driver", flat=True))
    assert len(refused) + len(taken_back) == DRIVERS
    assert sorted(
        Notification.objects.filter(kind="route.taken_back", channel="email").values_list("user", flat=True)
    ) == sorted(Driver.objects.filter(pk__in=taken_back).values_list("user", flat=True))
