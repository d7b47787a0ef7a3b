"""Routes that change after they were built: orders still being packed join a route and are
re-planned when packed (issue 3 point 3), a route that loses an order is re-planned and its
driver told, and a driver gives back the unstarted part of a route after some pickups."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from drivers import routing, services, tasks
from drivers.lifecycle import OfferStatus
from drivers.models import (
    Answer,
    DriverEvent,
    Handoff,
    MarketPaySettings,
    OfferRecipient,
    Route,
    RouteStatus,
    RouteStop,
    StopStatus,
)
from drivers.tests.factories import make_driver, make_ready_order
from orders.lifecycle import OrderStatus
from orders.models import Order
from orders.services import (
    order_accept,
    order_cancel,
    order_mark_ready,
    order_record_picked,
    order_reject,
    order_start_picking,
)
from portal.errors import ActionRefused
from portal.notifications.models import Channel, Notification
from portal.tests.factories import (
    make_listing,
    make_mall,
    make_market,
    make_order,
    make_staff,
    make_stock,
    make_store,
    make_user,
)
from retailers.models import SizeClass

pytestmark = pytest.mark.django_db


@pytest.fixture
def mall():
    return make_mall(market=make_market())


def _near(mall, miles_north: float) -> dict:
    return {"latitude": mall.latitude + Decimal(f"{miles_north / 69:.6f}"), "longitude": mall.longitude}


def _picking_order(store, *, ready_in: dt.timedelta, lines=None, **fields):
    """An order the store is picking, whose preparation SLA ends `ready_in` from now."""
    placed_at = timezone.now() + ready_in - dt.timedelta(minutes=store.prep_sla_minutes)
    order = make_order(store=store, placed_at=placed_at, lines=lines, deliver_in=dt.timedelta(hours=4), **fields)
    order_accept(order=order, acting_user=None)
    order_start_picking(order=order, acting_user=None)
    return order


def _pack(order, *, packages: int):
    order_record_picked(order=order, acting_user=None, picked={line.pk: line.quantity for line in order.lines.all()})
    order_mark_ready(order=order, acting_user=None, package_count=packages)


def _build(mall):
    return services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)


# --- (a) orders that will be ready before a driver gets there ------------------------------------


def test_estimate_packages_from_size_classes():
    assert routing.estimate_packages([("small", 1)]) == 1
    assert routing.estimate_packages([("small", 3)]) == 2
    assert routing.estimate_packages([("medium", 2), ("large", 1)]) == 4
    assert routing.estimate_packages([("oversize", 10)]) == 20
    assert routing.estimate_packages([]) == 1


def test_routes_build_joins_order_ready_in_10_minutes_not_one_ready_in_3_hours(mall):
    store = make_store(mall=mall)
    ready = make_ready_order(store=store, packages=2, **_near(mall, 2))
    soon = _picking_order(store, ready_in=dt.timedelta(minutes=10), **_near(mall, 2.2))
    late = _picking_order(store, ready_in=dt.timedelta(hours=3), **_near(mall, 2.1))
    # 8 miles out: 19 to 35 minutes from the mall whatever the hour, so after `soon` is packed.
    make_driver(market=mall.market, online=True, **_near(mall, 8))

    [route] = _build(mall)

    assert {stop.order for stop in route.stops.all()} == {ready, soon}
    packing = route.stops.get(order=soon)
    assert (packing.planned_packages, packing.ready_expected_at) == (1, soon.prep_due_at)
    assert route.stops.get(order=ready).ready_expected_at is None
    assert route.packages == 3
    assert not RouteStop.objects.filter(order=late).exists()
    assert _build(mall) == []


def test_routes_build_leaves_packing_orders_alone_without_a_free_driver(mall):
    store = make_store(mall=mall)
    _picking_order(store, ready_in=dt.timedelta(minutes=10), **_near(mall, 2))

    assert _build(mall) == []
    assert not RouteStop.objects.exists()


def test_routes_build_sizes_packing_order_from_its_lines(mall):
    store = make_store(mall=mall)
    listing = make_listing(seller=store.seller, size_class=SizeClass.LARGE)
    make_stock(store=store, listing=listing, on_hand=5)
    order = _picking_order(store, ready_in=dt.timedelta(minutes=5), lines=[(listing, 3)], **_near(mall, 2))
    make_driver(market=mall.market, online=True, **_near(mall, 8))

    [route] = _build(mall)

    assert (route.stops.get().planned_packages, route.packages) == (6, 6)
    assert order.status == OrderStatus.PICKING


def test_handoff_refuses_order_still_being_packed(mall):
    store = make_store(mall=mall)
    order = _picking_order(store, ready_in=dt.timedelta(minutes=5), **_near(mall, 2))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 8))
    [route] = _build(mall)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()

    with pytest.raises(ActionRefused, match=f"Order {order.number} is still being packed: mark it ready"):
        services.handoff_verify_code(store=store, code=offer.pickup_code)


def test_offer_shows_driver_which_stops_are_still_being_packed(mall, client):
    packed_store = make_store(mall=mall, name="Zara")
    packing_store = make_store(mall=mall, name="Nike")
    make_ready_order(store=packed_store, **_near(mall, 2))
    soon = _picking_order(packing_store, ready_in=dt.timedelta(minutes=10), **_near(mall, 2.2))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 8))
    _build(mall)
    client.force_login(driver.user)

    page = client.get("/driver/").content.decode()

    local = timezone.localtime(soon.prep_due_at, mall.tz)
    assert "Still being packed: Nike (ready about " + local.strftime("%-I:%M %p") + ")" in page
    assert "Still being packed: Zara" not in page


def test_packed_with_more_packages_than_fit_moves_order_off_the_route(mall):
    store = make_store(mall=mall)
    big = make_ready_order(store=store, packages=10, **_near(mall, 2))
    soon = _picking_order(store, ready_in=dt.timedelta(minutes=10), **_near(mall, 2.2))
    make_driver(market=mall.market, online=True, **_near(mall, 8))
    [route] = _build(mall)
    assert route.packages == 11

    _pack(soon, packages=4)
    assert services.routes_replan_packed_orders(now=timezone.now()) == 1

    route.refresh_from_db()
    assert [stop.order for stop in route.stops.filter(is_current=True)] == [big]
    assert (route.packages, route.replans) == (10, 1)
    moved = RouteStop.objects.get(order=soon, route=route)
    assert (moved.status, moved.is_current, moved.planned_packages) == (StopStatus.MOVED, False, 4)
    # The next build gives it a route of its own, with its real size.
    [again] = _build(mall)
    assert (again.stops.get().order, again.packages) == (soon, 4)
    assert services.routes_replan_packed_orders(now=timezone.now()) == 0


def test_packed_with_fewer_packages_frees_room_on_the_route(mall):
    store = make_store(mall=mall)
    listing = make_listing(seller=store.seller, size_class=SizeClass.MEDIUM)
    make_stock(store=store, listing=listing, on_hand=5)
    ready = make_ready_order(store=store, **_near(mall, 2))
    soon = _picking_order(store, ready_in=dt.timedelta(minutes=10), lines=[(listing, 4)], **_near(mall, 2.2))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 8))
    [route] = _build(mall)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=driver)
    assert route.stops.get(order=soon).planned_packages == 4

    _pack(soon, packages=1)
    services.routes_replan_packed_orders(now=timezone.now())

    route.refresh_from_db()
    assert {stop.order for stop in route.stops.filter(is_current=True)} == {ready, soon}
    assert (route.packages, route.replans, route.status) == (2, 1, RouteStatus.ASSIGNED)
    [message] = Notification.objects.filter(kind="route.replanned", channel=Channel.SMS)
    assert message.to == driver.phone
    assert f"order {soon.number} was packed into 1 package, not 4" in message.body
    offer = route.offers.get()
    assert f"): 2 stops, ${offer.pay_cents / 100:.2f}. See the app." in message.body


def test_packed_order_on_route_under_way_keeps_the_plan(mall):
    first, second = make_store(mall=mall), make_store(mall=mall)
    ready = make_ready_order(store=first, **_near(mall, 2))
    soon = _picking_order(second, ready_in=dt.timedelta(minutes=10), **_near(mall, 2.2))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 8))
    [route] = _build(mall)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    services.handoff_confirm_packages(
        store=first, code=offer.pickup_code, labels=[p.label_code for p in ready.packages.all()], acting_user=None
    )

    _pack(soon, packages=3)
    assert services.routes_replan_packed_orders(now=timezone.now()) == 1

    route.refresh_from_db()
    assert (route.status, route.packages, route.replans) == (RouteStatus.UNDER_WAY, 4, 0)
    assert route.stops.get(order=soon).is_current is True


# --- (b) a route that loses an order -------------------------------------------------------------


def _two_order_route(mall):
    store = make_store(mall=mall)
    near = make_ready_order(store=store, **_near(mall, 2))
    far = make_ready_order(store=store, **_near(mall, 4))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 0.5))
    [route] = _build(mall)
    return store, near, far, driver, route, route.offers.get()


def test_route_losing_a_cancelled_order_is_replanned_and_driver_told(mall):
    _store, near, far, driver, route, offer = _two_order_route(mall)
    services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    promised = offer.pay_cents

    order_cancel(order=far, acting_user=None, reason="customer_request")
    assert services.routes_drop_cancelled_orders(now=timezone.now()) == 1

    route.refresh_from_db()
    offer.refresh_from_db()
    [kept] = route.stops.filter(is_current=True)
    assert kept.order == near
    travel = services._travel(mall)
    mall_point = routing.Point(float(mall.latitude), float(mall.longitude))
    drop = routing.Point(float(near.latitude), float(near.longitude))
    assert route.estimated_miles == Decimal(str(round(travel.miles(mall_point, drop), 2)))
    assert kept.miles_from_previous == route.estimated_miles
    assert (route.status, route.packages, route.replans) == (RouteStatus.ASSIGNED, 1, 1)
    # The shorter route is worth less, but the driver keeps the pay they accepted.
    assert services._route_quote(route, stops=1, attempt=0).total_cents < promised
    assert (offer.status, offer.pay_cents) == (OfferStatus.ACCEPTED, promised)
    messages = Notification.objects.filter(kind="route.replanned")
    assert {(row.channel, row.to) for row in messages} == {
        (Channel.EMAIL, driver.user.email),
        (Channel.SMS, driver.phone),
    }
    assert f"order {far.number} was cancelled" in messages.get(channel=Channel.EMAIL).body
    stop = RouteStop.objects.get(order=far)
    assert (stop.status, stop.is_current) == (StopStatus.CANCELLED, False)


def test_open_offer_losing_an_order_keeps_the_pay_it_showed(mall):
    _store, _near_order, far, _driver, route, offer = _two_order_route(mall)
    shown = offer.pay_cents

    order_cancel(order=far, acting_user=None, reason="customer_request")
    services.routes_drop_cancelled_orders(now=timezone.now())

    offer.refresh_from_db()
    route.refresh_from_db()
    assert (offer.status, offer.pay_cents, route.stops.filter(is_current=True).count()) == (
        OfferStatus.OPEN,
        shown,
        1,
    )
    assert not Notification.objects.filter(kind="route.replanned").exists()


def test_route_losing_a_rejected_packing_order_is_replanned(mall):
    store = make_store(mall=mall)
    ready = make_ready_order(store=store, **_near(mall, 2))
    soon = _picking_order(store, ready_in=dt.timedelta(minutes=10), **_near(mall, 2.2))
    make_driver(market=mall.market, online=True, **_near(mall, 8))
    [route] = _build(mall)

    order_reject(order=soon, acting_user=None, reason="Damaged item")
    assert services.routes_drop_cancelled_orders(now=timezone.now()) == 1

    route.refresh_from_db()
    assert [stop.order for stop in route.stops.filter(is_current=True)] == [ready]
    assert (route.packages, route.replans) == (1, 1)


# --- (c) forfeit after some pickups --------------------------------------------------------------


def _two_store_route(mall, *, drivers: int = 2):
    first, second = make_store(mall=mall), make_store(mall=mall)
    one = make_ready_order(store=first, **_near(mall, 2))
    two = make_ready_order(store=second, packages=2, **_near(mall, 2.2))
    online = [make_driver(market=mall.market, online=True, **_near(mall, 0.5 + n)) for n in range(drivers)]
    [route] = _build(mall)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=online[0])
    offer.refresh_from_db()
    services.handoff_confirm_packages(
        store=first, code=offer.pickup_code, labels=[p.label_code for p in one.packages.all()], acting_user=None
    )
    return first, second, one, two, online, route, offer


def test_offer_forfeit_after_first_store_keeps_picked_part_and_reoffers_rest(mall):
    _first, second, one, two, (driver, other), route, offer = _two_store_route(mall)

    reoffer = services.offer_forfeit(offer=offer, driver=driver, reason="Car is full")

    offer.refresh_from_db()
    route.refresh_from_db()
    assert (offer.status, route.status, route.driver) == (OfferStatus.ACCEPTED, RouteStatus.UNDER_WAY, driver)
    assert [stop.order for stop in route.stops.filter(is_current=True)] == [one]
    assert offer.pay_cents == services._route_quote(route, stops=1, attempt=0).total_cents
    rest = reoffer.route
    assert (rest.split_from, rest.status, rest.reoffers, rest.packages) == (route, RouteStatus.OFFERING, 1, 2)
    assert [(stop.order, stop.store, stop.status) for stop in rest.stops.all()] == [(two, second, StopStatus.PENDING)]
    assert (reoffer.status, reoffer.attempt, reoffer.bump_cents) == (OfferStatus.OPEN, 1, 100)
    assert OfferRecipient.objects.get(offer=reoffer, driver=other).answer == Answer.PENDING
    assert OfferRecipient.objects.get(offer=reoffer, driver=driver).not_offered_reason == "gave this route back"
    assert RouteStop.objects.get(order=two, route=route).status == StopStatus.MOVED
    event = DriverEvent.objects.get(driver=driver, type="driver.offer_forfeited_part")
    assert (event.reason, event.data["new_route"]) == ("Car is full", rest.pk)
    # The old code no longer collects at the second store; the new driver's code does.
    with pytest.raises(ActionRefused, match="Wrong store"):
        services.handoff_verify_code(store=second, code=offer.pickup_code)
    services.offer_accept(offer=reoffer, driver=other)
    reoffer.refresh_from_db()
    assert services.handoff_verify_code(store=second, code=reoffer.pickup_code).labels == [
        package.label_code for package in two.packages.all()
    ]


def test_offer_forfeit_refused_when_every_store_was_visited(mall):
    _first, second, _one, two, (driver, _other), _route, offer = _two_store_route(mall)
    services.handoff_confirm_packages(
        store=second, code=offer.pickup_code, labels=[p.label_code for p in two.packages.all()], acting_user=None
    )

    with pytest.raises(ActionRefused, match="already picked up every package"):
        services.offer_forfeit(offer=offer, driver=driver)

    assert Route.objects.count() == 1
    assert Handoff.objects.count() == 2


def test_route_page_offers_partial_forfeit_and_keeps_driver_on_the_route(mall, client):
    _first, second, _one, _two, (driver, _other), route, _offer = _two_store_route(mall)
    client.force_login(driver.user)

    page = client.get(reverse("driver:route", args=[route.pk])).content.decode()
    response = client.post(reverse("driver:route-forfeit", args=[route.pk]), {"reason": "Car is full"})

    assert "Give back the stores not yet visited" in page
    assert response.status_code == 302
    assert response.url == reverse("driver:route", args=[route.pk])
    after = client.get(response.url).content.decode()
    assert "You gave back the stores you had not visited. Deliver the packages in your car." in after
    assert second.name not in after
    assert "Give back the stores not yet visited" not in after


def test_route_page_shows_store_still_packing(mall, client):
    store = make_store(mall=mall, name="Nike")
    order = _picking_order(store, ready_in=dt.timedelta(minutes=10), **_near(mall, 2))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 8))
    [route] = _build(mall)
    services.offer_accept(offer=route.offers.get(), driver=driver)
    client.force_login(driver.user)

    page = client.get(reverse("driver:route", args=[route.pk])).content.decode()

    local = timezone.localtime(order.prep_due_at, mall.tz)
    assert "Still being packed: ready about " + local.strftime("%-I:%M %p") in page


def test_build_routes_task_routes_packing_order_then_replans_when_packed(mall):
    store = make_store(mall=mall)
    make_ready_order(store=store, packages=10, **_near(mall, 2))
    soon = _picking_order(store, ready_in=dt.timedelta(minutes=10), **_near(mall, 2.2))
    make_driver(market=mall.market, online=True, **_near(mall, 8))
    assert tasks.build_routes() == 1
    first = RouteStop.objects.get(order=soon).route

    _pack(soon, packages=5)
    assert tasks.build_routes() == 1

    first.refresh_from_db()
    assert (first.packages, first.replans) == (10, 1)
    assert RouteStop.objects.get(order=soon, is_current=True).route.packages == 5
    assert tasks.build_routes() == 0


def test_build_routes_task_never_routes_training_orders(mall):
    order = make_ready_order(store=make_store(mall=mall), **_near(mall, 2))
    # A store's onboarding test order (the flag is set by retailers' onboarding service).
    Order.objects.filter(pk=order.pk).update(is_training=True)
    make_driver(market=mall.market, online=True, **_near(mall, 8))

    assert tasks.build_routes() == 0
    assert not RouteStop.objects.exists()


def test_offer_forfeit_part_too_big_for_a_typical_car_goes_to_the_next_build(mall):
    _first, _second, _one, two, (driver, _other), _route, offer = _two_store_route(mall)
    MarketPaySettings.objects.create(market=mall.market, route_capacity_units=1)

    assert services.offer_forfeit(offer=offer, driver=driver) is None

    assert not RouteStop.objects.filter(order=two, is_current=True).exists()
    [flagged] = _build(mall)
    assert (flagged.status, flagged.alert) == (
        RouteStatus.AT_RISK,
        f"Order {two.number} cannot be routed: it has more packages than a route may hold.",
    )


def test_arriving_email_counts_estimated_packages_of_store_still_packing(mall):
    store = make_store(mall=mall)
    listing = make_listing(seller=store.seller, size_class=SizeClass.MEDIUM)
    make_stock(store=store, listing=listing, on_hand=5)
    _picking_order(store, ready_in=dt.timedelta(minutes=10), lines=[(listing, 3)], **_near(mall, 2))
    staff = make_staff(store=store, user=make_user(email="counter@store.example"))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 8))
    [route] = _build(mall)

    services.offer_accept(offer=route.offers.get(), driver=driver)

    [message] = Notification.objects.filter(kind="driver.arriving", to=staff.user.email)
    assert "collect 3 packages" in message.body


def test_route_partial_forfeit_sent_twice_answers_the_second_like_the_first(mall, client):
    _first, _second, _one, _two, (driver, _other), route, _offer = _two_store_route(mall)
    client.force_login(driver.user)
    url = reverse("driver:route-forfeit", args=[route.pk])

    client.post(url, {"reason": "Car is full"})
    second = client.post(url, {"reason": "Car is full"}, follow=True)

    assert second.redirect_chain == [(reverse("driver:route", args=[route.pk]), 302)]
    assert [str(message) for message in second.context["messages"]] == [
        "You gave back the stores you had not visited. Deliver the packages in your car."
    ]
    assert "error" not in second.context
    assert driver.events.filter(type="driver.offer_forfeited_part").count() == 1
