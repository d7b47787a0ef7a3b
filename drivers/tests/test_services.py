import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from drivers import services
from drivers.lifecycle import DriverStatus, OfferStatus
from drivers.models import (
    Answer,
    DocumentKind,
    DriverEvent,
    Handoff,
    MarketPaySettings,
    OfferRecipient,
    RouteStatus,
    StopStatus,
    StoreCheckIn,
)
from drivers.tests.factories import make_driver, make_ready_order, set_documents_expiry
from orders.delivery import delivery_pin_for
from orders.lifecycle import OrderStatus
from orders.models import Order, OrderEvent
from orders.services import order_accept, order_cancel, order_mark_ready, order_record_picked, order_start_picking
from portal.errors import ActionRefused
from portal.notifications.models import Channel, Notification
from portal.tests.factories import make_mall, make_market, make_order, make_staff, make_store, make_user
from retailers.models import Stock

pytestmark = pytest.mark.django_db

PHOTO = b"\xff\xd8\xff\xe0proof-photo"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def mall():
    return make_mall(market=make_market())


def _near(mall, miles_north: float) -> dict:
    return {"latitude": mall.latitude + Decimal(f"{miles_north / 69:.6f}"), "longitude": mall.longitude}


def _routed(mall, *, drivers=3, packages=1):
    """One ready order, `drivers` online drivers (the first nearest), the route and its offer."""
    store = make_store(mall=mall)
    order = make_ready_order(store=store, packages=packages, **_near(mall, 2))
    online = [make_driver(market=mall.market, online=True, **_near(mall, 0.5 + n)) for n in range(drivers)]
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    return store, order, online, route, route.offers.get()


# --- driver lifecycle ---------------------------------------------------------------------------


def test_driver_approve_moves_screening_to_active_and_records_event():
    operator = make_user(is_staff=True)
    driver = make_driver(status=DriverStatus.SCREENING)

    services.driver_approve(driver=driver, acting_user=operator)

    driver.refresh_from_db()
    assert driver.status == DriverStatus.ACTIVE
    event = DriverEvent.objects.get(driver=driver)
    assert (event.type, event.from_status, event.to_status, event.actor) == (
        "driver.active",
        "screening",
        "active",
        operator,
    )


def test_driver_approve_refuses_expired_documents():
    driver = make_driver(
        status=DriverStatus.SCREENING, documents_valid_until=timezone.now().date() - dt.timedelta(days=2)
    )

    with pytest.raises(ActionRefused, match="no valid insurance, licence"):
        services.driver_approve(driver=driver, acting_user=None)

    assert driver.__class__.objects.get(pk=driver.pk).status == DriverStatus.SCREENING


def test_driver_approve_refuses_applicant_without_screening():
    driver = make_driver(status=DriverStatus.APPLICANT)

    with pytest.raises(ActionRefused, match="applicant: they cannot be moved to active"):
        services.driver_approve(driver=driver, acting_user=None)


def test_driver_deactivate_needs_reason_and_takes_driver_offline():
    driver = make_driver(online=True)

    with pytest.raises(ActionRefused, match="Give a reason"):
        services.driver_deactivate(driver=driver, acting_user=None, reason=" ")
    services.driver_deactivate(driver=driver, acting_user=None, reason="Fraud report")

    driver.refresh_from_db()
    assert (driver.status, driver.status_reason, driver.is_online) == ("deactivated", "Fraud report", False)


def test_driver_pause_then_resume():
    driver = make_driver()

    services.driver_pause(driver=driver, acting_user=None, reason="Vacation")
    services.driver_approve(driver=driver, acting_user=None)

    assert list(DriverEvent.objects.filter(driver=driver).values_list("type", flat=True)) == [
        "driver.inactive",
        "driver.active",
    ]


def test_driver_go_online_refuses_expired_licence():
    driver = make_driver()
    set_documents_expiry(driver, dt.date(2020, 1, 31), kind=DocumentKind.LICENCE)

    with pytest.raises(ActionRefused, match="driving licence expired on Jan 31, 2020"):
        services.driver_go_online(driver=driver, market=driver.home_market, latitude=None, longitude=None)

    driver.refresh_from_db()
    assert driver.is_online is False


def test_driver_go_online_refuses_a_position_far_from_every_mall_of_the_market(mall):
    driver = make_driver(market=mall.market)

    with pytest.raises(ActionRefused) as refused:
        services.driver_go_online(driver=driver, market=mall.market, latitude=Decimal("0"), longitude=Decimal("0"))
    services.driver_go_online(
        driver=driver, market=mall.market, latitude=mall.latitude + Decimal("0.2"), longitude=mall.longitude
    )

    assert refused.value.code == "out-of-market"
    assert refused.value.message.startswith("Your location is 7,")
    assert refused.value.message.endswith(
        f"miles from {mall.name}, the nearest mall in {mall.market.name}: choose the market you are in, or check "
        "your location."
    )
    driver.refresh_from_db()
    assert (driver.is_online, driver.latitude) == (True, mall.latitude + Decimal("0.2"))


def test_driver_go_online_then_offline():
    driver = make_driver()

    services.driver_go_online(
        driver=driver, market=driver.home_market, latitude=Decimal("36.1"), longitude=Decimal("-115.1")
    )
    driver.refresh_from_db()
    assert (driver.is_online, driver.online_market, driver.latitude) == (True, driver.home_market, Decimal("36.1"))

    services.driver_go_offline(driver=driver, acting_user=driver.user)
    driver.refresh_from_db()
    assert (driver.is_online, driver.online_market) == (False, None)


def test_documents_sweep_takes_driver_offline_and_tells_them_once():
    driver = make_driver(online=True)
    set_documents_expiry(driver, timezone.now().date() - dt.timedelta(days=2), kind=DocumentKind.INSURANCE)

    first = services.documents_sweep(now=timezone.now())
    second = services.documents_sweep(now=timezone.now())

    driver.refresh_from_db()
    assert (first, second, driver.is_online) == (1, 0, False)
    rows = Notification.objects.filter(user=driver.user).order_by("channel")
    assert [(row.channel, row.to, row.subject) for row in rows] == [
        (Channel.EMAIL, driver.user.email, "Your vehicle insurance has expired"),
        (Channel.SMS, driver.phone, "Your vehicle insurance has expired"),
    ]


# --- routes and offers --------------------------------------------------------------------------


def test_routes_build_for_mall_shares_route_between_stores_and_is_idempotent(mall):
    first_store, second_store = make_store(mall=mall), make_store(mall=mall)
    orders = [
        make_ready_order(store=first_store, **_near(mall, 2)),
        make_ready_order(store=second_store, packages=2, **_near(mall, 2.1)),
    ]

    routes = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    again = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)

    assert again == []
    [route] = routes
    assert route.packages == 3
    assert [stop.order for stop in route.stops.order_by("sequence")] == orders
    assert route.offers.get().status == OfferStatus.OPEN


def test_routes_build_for_mall_flags_order_outside_radius_for_operator(mall):
    order = make_ready_order(store=make_store(mall=mall), **_near(mall, 15))

    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)

    assert route.status == RouteStatus.AT_RISK
    assert route.alert == f"Order {order.number} cannot be routed: the address is outside the mall's delivery radius."
    assert route.offers.count() == 0


def test_route_pay_follows_market_rules(mall):
    _store, _order, _drivers, route, offer = _routed(mall)

    quote = services._route_quote(route, stops=1, attempt=0)
    assert offer.pay_cents == quote.total_cents
    assert offer.pay_cents >= 300 + 150


def test_offer_first_wave_goes_to_nearest_and_records_why_others_not(mall):
    store = make_store(mall=mall)
    make_ready_order(store=store, packages=3, **_near(mall, 2))
    near, second, third = (make_driver(market=mall.market, online=True, **_near(mall, m)) for m in (0.2, 1, 2))
    small = make_driver(market=mall.market, online=True, capacity_units=2, **_near(mall, 0.1))
    offline = make_driver(market=mall.market, online=False)
    expired = make_driver(market=mall.market, online=True, **_near(mall, 0.1))
    lapsed = timezone.now().date() - dt.timedelta(days=2)
    set_documents_expiry(expired, lapsed)

    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)

    rows = {row.driver: row for row in OfferRecipient.objects.filter(offer__route=route)}
    assert offline not in rows
    assert {driver for driver, row in rows.items() if row.answer == Answer.PENDING} == {near, second}
    assert rows[third].not_offered_reason == "ranked 3: wave 1 reached the top 2"
    assert rows[small].not_offered_reason == "vehicle holds 2 packages; the route has 3"
    assert rows[expired].not_offered_reason == (
        f"documents: vehicle insurance expired on {lapsed:%b %d, %Y}; driving licence expired on {lapsed:%b %d, %Y}"
    )
    offers = Notification.objects.filter(kind="offer")
    assert sorted(offers.values_list("user", "channel")) == sorted(
        (driver.user.pk, channel) for driver in (near, second) for channel in (Channel.EMAIL, Channel.SMS)
    )


def test_offer_accept_assigns_route_and_marks_others_taken(mall):
    _store, _order, (first, second, _third), route, offer = _routed(mall)

    services.offer_accept(offer=offer, driver=first)

    offer.refresh_from_db()
    route.refresh_from_db()
    assert (offer.status, offer.driver, len(offer.pickup_code)) == (OfferStatus.ACCEPTED, first, 6)
    assert (route.status, route.driver) == (RouteStatus.ASSIGNED, first)
    assert OfferRecipient.objects.get(offer=offer, driver=second).answer == Answer.TAKEN


def test_offer_accept_second_driver_told_already_taken(mall):
    _store, _order, (first, second, _third), _route, offer = _routed(mall)
    services.offer_accept(offer=offer, driver=first)

    with pytest.raises(ActionRefused, match="already taken"):
        services.offer_accept(offer=offer, driver=second)

    assert OfferRecipient.objects.get(offer=offer, driver=second).answer == Answer.TAKEN


def test_offer_accept_refused_for_driver_not_offered(mall):
    _store, _order, (_first, _second, third), _route, offer = _routed(mall)

    with pytest.raises(ActionRefused, match="not sent to you"):
        services.offer_accept(offer=offer, driver=third)


def test_offer_decline_by_whole_wave_widens_at_once(mall):
    _store, _order, (first, second, third), _route, offer = _routed(mall)

    services.offer_decline(offer=offer, driver=first)
    services.offer_decline(offer=offer, driver=second)

    offer.refresh_from_db()
    assert offer.wave == 2
    assert OfferRecipient.objects.get(offer=offer, driver=third).answer == Answer.PENDING


def test_driver_going_offline_passes_on_the_offers_waiting_for_their_answer(mall):
    _store, _order, (first, second, third), _route, offer = _routed(mall)

    services.driver_go_offline(driver=first, acting_user=first.user)

    offer.refresh_from_db()
    answers = dict(OfferRecipient.objects.filter(offer=offer).values_list("driver_id", "answer"))
    assert answers == {first.pk: Answer.OFFLINE, second.pk: Answer.PENDING, third.pk: Answer.NOT_OFFERED}
    assert OfferRecipient.objects.get(offer=offer, driver=first).answered_at is not None
    # Second is still to answer: the wave waits for them.
    assert offer.wave == 1
    with pytest.raises(ActionRefused, match="You went offline before answering, so this offer went to other drivers."):
        services.offer_accept(offer=offer, driver=first)
    offer.refresh_from_db()
    assert (offer.status, offer.driver) == (OfferStatus.OPEN, None)


def test_wave_whose_last_pending_driver_goes_offline_widens_at_once(mall):
    _store, _order, (first, second, third), _route, offer = _routed(mall)
    services.offer_decline(offer=offer, driver=first)

    services.driver_go_offline(driver=second, acting_user=second.user)

    offer.refresh_from_db()
    assert offer.wave == 2
    answers = dict(OfferRecipient.objects.filter(offer=offer).values_list("driver_id", "answer"))
    assert answers == {first.pk: Answer.DECLINED, second.pk: Answer.OFFLINE, third.pk: Answer.PENDING}


def test_paused_driver_no_longer_holds_up_the_offers_sent_to_them(mall):
    _store, _order, (first, second, _third), _route, offer = _routed(mall)
    services.offer_decline(offer=offer, driver=first)
    operator = make_user(username="operator", is_staff=True)

    services.driver_pause(driver=second, acting_user=operator, reason="Vehicle in for repair")

    offer.refresh_from_db()
    assert offer.wave == 2
    assert OfferRecipient.objects.get(offer=offer, driver=second).answer == Answer.OFFLINE


def test_going_offline_keeps_the_answers_already_given(mall):
    _store, _order, (first, second, _third), _route, offer = _routed(mall)
    services.offer_decline(offer=offer, driver=first)
    services.offer_accept(offer=offer, driver=second)

    services.driver_go_offline(driver=first, acting_user=first.user)

    answers = dict(
        OfferRecipient.objects.filter(offer=offer, offered_at__isnull=False).values_list("driver_id", "answer")
    )
    assert answers == {first.pk: Answer.DECLINED, second.pk: Answer.ACCEPTED}
    offer.refresh_from_db()
    assert (offer.status, offer.driver, offer.wave) == (OfferStatus.ACCEPTED, second, 1)


def test_offers_sweep_widens_then_expires_and_reoffers_with_bump(mall):
    _store, _order, (first, second, third), route, offer = _routed(mall)
    later = timezone.now() + dt.timedelta(seconds=61)

    assert services.offers_sweep(now=later) == 1
    assert services.offers_sweep(now=later) == 0
    assert services.offers_sweep(now=later + dt.timedelta(seconds=61)) == 1
    assert services.offers_sweep(now=later + dt.timedelta(seconds=122)) == 1

    offer.refresh_from_db()
    assert (offer.status, offer.wave) == (OfferStatus.EXPIRED, 3)
    assert OfferRecipient.objects.get(offer=offer, driver=first).answer == Answer.TIMED_OUT
    reoffer = route.offers.get(status=OfferStatus.OPEN)
    assert (reoffer.attempt, reoffer.bump_cents, reoffer.pay_cents) == (1, 100, offer.pay_cents + 100)


def test_offers_sweep_alerts_operator_when_deadline_at_risk(mall):
    store = make_store(mall=mall)
    make_ready_order(store=store, deliver_in=dt.timedelta(minutes=40), **_near(mall, 2))
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    later = timezone.now() + dt.timedelta(minutes=30)

    assert services.offers_sweep(now=later) == 1

    route.refresh_from_db()
    assert route.status == RouteStatus.AT_RISK
    assert route.alert == (
        "Nobody took the route yet; a driver could no longer reach the mall in time for every deadline."
    )
    assert list(route.offers.values_list("status", "close_reason")) == [("expired", "deadline at risk")]


def test_route_taken_after_its_planned_departure_leaves_when_the_driver_can_be_there(mall):
    _store, order, (first, _second, _third), route, offer = _routed(mall)
    planned_depart, planned_eta = route.depart_at, route.stops.get().eta
    accepted_at = planned_depart + dt.timedelta(minutes=5)

    services.offer_accept(offer=offer, driver=first, now=accepted_at)

    route.refresh_from_db()
    moved = accepted_at + dt.timedelta(minutes=8) - planned_depart  # the mall's pickup minutes
    assert route.depart_at == accepted_at + dt.timedelta(minutes=8)
    assert route.stops.get().eta == planned_eta + moved
    assert not OrderEvent.objects.filter(order=order, type="order.delayed").exists()


def test_route_taken_in_time_keeps_its_plan(mall):
    _store, _order, (first, _second, _third), route, offer = _routed(mall)
    planned_depart, planned_eta = route.depart_at, route.stops.get().eta

    services.offer_accept(offer=offer, driver=first, now=planned_depart - dt.timedelta(minutes=8))

    route.refresh_from_db()
    assert (route.depart_at, route.stops.get().eta) == (planned_depart, planned_eta)


def test_route_given_so_late_that_a_deadline_slips_flags_the_order_delayed(mall):
    _store, order, (first, _second, _third), route, _offer = _routed(mall)
    late = order.deliver_by

    services.route_assign(route=route, driver=first, acting_user=None, now=late)

    route.refresh_from_db()
    assert route.depart_at == late + dt.timedelta(minutes=8)
    assert OrderEvent.objects.get(order=order, type="order.delayed").reason == (
        "The route was taken late: the driver will arrive after the deadline."
    )


def test_offer_forfeit_reoffers_at_once_without_the_driver(mall):
    _store, _order, (first, _second, _third), route, offer = _routed(mall)
    services.offer_accept(offer=offer, driver=first)

    reoffer = services.offer_forfeit(offer=offer, driver=first, reason="Flat tyre")

    offer.refresh_from_db()
    assert offer.status == OfferStatus.FORFEITED
    assert (reoffer.attempt, reoffer.status) == (1, OfferStatus.OPEN)
    assert OfferRecipient.objects.get(offer=reoffer, driver=first).not_offered_reason == "gave this route back"
    route.refresh_from_db()
    assert (route.status, route.driver) == (RouteStatus.OFFERING, None)


def test_route_reoffer_by_operator_only_when_at_risk(mall):
    _store, _order, _drivers, route, _offer = _routed(mall)

    with pytest.raises(ActionRefused, match="Only a route waiting for an operator"):
        services.route_reoffer(route=route, acting_user=None)


def _operator():
    return make_user(is_staff=True, is_superuser=True, email="olga@example.com")


def test_route_assign_gives_an_offered_route_to_the_driver_the_operator_chose(mall):
    store, _order, (first, second, third), route, offer = _routed(mall)
    member = make_staff(store=store, user=make_user(email="sam@example.com")).user
    operator = _operator()

    given = services.route_assign(route=route, driver=third, acting_user=operator)

    offer.refresh_from_db()
    route.refresh_from_db()
    assert (offer.status, offer.close_reason) == (OfferStatus.WITHDRAWN, f"given to {third} by an operator")
    answers = dict(OfferRecipient.objects.filter(offer=offer).values_list("driver_id", "answer"))
    assert answers == {first.pk: Answer.TAKEN, second.pk: Answer.TAKEN, third.pk: Answer.NOT_OFFERED}
    assert (given.status, given.driver, given.pay_cents, len(given.pickup_code)) == (
        OfferStatus.ACCEPTED,
        third,
        offer.pay_cents,
        6,
    )
    assert list(given.recipients.values_list("driver_id", "answer")) == [(third.pk, Answer.ACCEPTED)]
    assert (route.status, route.driver, route.alert) == (RouteStatus.ASSIGNED, third, "")
    event = DriverEvent.objects.get(driver=third, type="driver.route_assigned")
    assert (event.actor, event.data) == (operator, {"offer": given.pk, "route": route.pk, "from_driver": None})
    told = Notification.objects.filter(kind="route.assigned", user=third.user)
    assert sorted(told.values_list("channel", flat=True)) == [Channel.EMAIL, Channel.SMS]
    assert told.get(channel=Channel.EMAIL).subject == f"Route {route.pk} is yours: ${offer.pay_cents / 100:.2f}"
    assert (
        Notification.objects.get(kind="driver.arriving", user=member).subject
        == f"{third.name} is coming to {store.name}"
    )
    # The route is theirs as if they had accepted it: the store's handoff knows the code.
    assert services.handoff_verify_code(store=store, code=given.pickup_code).driver == third


def test_route_assign_takes_a_route_not_yet_picked_up_from_the_driver_who_held_it(mall):
    _store, _order, (first, second, _third), route, offer = _routed(mall)
    services.offer_accept(offer=offer, driver=first)

    given = services.route_assign(route=route, driver=second, acting_user=_operator())

    offer.refresh_from_db()
    route.refresh_from_db()
    assert (offer.status, offer.close_reason) == (OfferStatus.FORFEITED, f"given to {second} by an operator")
    assert (given.status, given.driver, route.status, route.driver) == (
        OfferStatus.ACCEPTED,
        second,
        RouteStatus.ASSIGNED,
        second,
    )
    taken_back = Notification.objects.get(kind="route.taken_back", user=first.user, channel=Channel.EMAIL)
    assert taken_back.subject == f"Route {route.pk} went to another driver"
    assert DriverEvent.objects.get(driver=second, type="driver.route_assigned").data["from_driver"] == first.pk
    with pytest.raises(ActionRefused, match="already has"):
        services.route_assign(route=route, driver=second, acting_user=None)


def test_reoffer_after_an_operator_hand_over_says_why_each_earlier_driver_is_left_out(mall):
    _store, _order, (first, second, third), route, offer = _routed(mall)
    services.offer_accept(offer=offer, driver=first)
    given = services.route_assign(route=route, driver=second, acting_user=_operator())

    reoffer = services.offer_forfeit(offer=given, driver=second, reason="Car trouble")

    reasons = dict(OfferRecipient.objects.filter(offer=reoffer).values_list("driver_id", "not_offered_reason"))
    assert reasons[first.pk] == "an operator gave this route to another driver"
    assert reasons[second.pk] == "gave this route back"
    assert reasons[third.pk] == ""


def test_route_assign_refuses_a_driver_who_could_not_take_it_and_changes_nothing(mall):
    store, _order, (first, second, third), route, offer = _routed(mall)
    services.driver_go_offline(driver=third, acting_user=None)
    busy_route_offer = _routed(mall, drivers=0)[4]
    services.offer_accept(offer=busy_route_offer, driver=second)
    services.offer_decline(offer=offer, driver=first)
    services.driver_pause(driver=first, acting_user=None, reason="Vehicle in for repair")

    refusals = {}
    for driver in (first, second, third):
        with pytest.raises(ActionRefused) as refused:
            services.route_assign(route=route, driver=driver, acting_user=None)
        refusals[driver.pk] = refused.value.message

    assert refusals == {
        first.pk: f"{first} is paused: only an active driver can take a route.",
        second.pk: f"{second} is on another route: give them this one once it is finished.",
        third.pk: f"{third} is not online in {mall.market.name}: ask them to go online first.",
    }
    offer.refresh_from_db()
    route.refresh_from_db()
    assert (offer.status, route.status, route.driver) == (OfferStatus.OPEN, RouteStatus.OFFERING, None)
    assert not DriverEvent.objects.filter(type="driver.route_assigned").exists()


def test_route_assign_refuses_a_route_already_picked_up(mall):
    _order, _driver, route, _offer, _stop = _picked_up(mall)
    other = make_driver(market=mall.market, online=True, **_near(mall, 1))

    with pytest.raises(ActionRefused) as refused:
        services.route_assign(route=route, driver=other, acting_user=None)

    assert refused.value.message == (
        f"{route} is under way: only a route not yet picked up anywhere can be given to a driver."
    )


# --- handoff and delivery -----------------------------------------------------------------------


def _accepted(mall, **kwargs):
    store, order, drivers, route, offer = _routed(mall, **kwargs)
    services.offer_accept(offer=offer, driver=drivers[0])
    offer.refresh_from_db()
    return store, order, drivers[0], route, offer


def test_handoff_verify_code_lists_store_packages(mall):
    store, order, driver, route, offer = _accepted(mall, packages=2)

    check = services.handoff_verify_code(store=store, code=offer.pickup_code)

    assert (check.driver, check.route) == (driver, route)
    assert check.labels == [package.label_code for package in order.packages.all()]


def test_handoff_verify_code_refuses_unknown_code(mall):
    store, *_ = _accepted(mall)

    with pytest.raises(ActionRefused, match="No driver has this pickup code"):
        services.handoff_verify_code(store=store, code="000000" if store.pk else "")


def test_handoff_verify_code_refuses_wrong_store(mall):
    _store, _order, _driver, _route, offer = _accepted(mall)
    other = make_store(mall=mall)

    with pytest.raises(ActionRefused, match=f"Wrong store: .* has no packages from {other.name}"):
        services.handoff_verify_code(store=other, code=offer.pickup_code)


def test_handoff_verify_code_refuses_driver_who_gave_route_back(mall):
    store, _order, driver, _route, offer = _accepted(mall)
    services.offer_forfeit(offer=offer, driver=driver)

    with pytest.raises(ActionRefused, match="Wrong driver"):
        services.handoff_verify_code(store=store, code=offer.pickup_code)


def test_handoff_confirm_packages_blocks_missing_package_and_writes_nothing(mall):
    store, order, _driver, _route, offer = _accepted(mall, packages=2)
    first_label = order.packages.first().label_code

    with pytest.raises(ActionRefused, match="Missing package"):
        services.handoff_confirm_packages(store=store, code=offer.pickup_code, labels=[first_label], acting_user=None)

    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    assert Handoff.objects.count() == 0


def test_handoff_confirm_packages_blocks_stray_label(mall):
    store, order, _driver, _route, offer = _accepted(mall)
    labels = [package.label_code for package in order.packages.all()] + ["MR999999"]

    with pytest.raises(ActionRefused, match="Label MR999999 is not part of"):
        services.handoff_confirm_packages(store=store, code=offer.pickup_code, labels=labels, acting_user=None)


def test_handoff_confirm_packages_picks_up_order_and_moves_stock(mall):
    store, order, driver, route, offer = _accepted(mall, packages=2)
    staff = make_user()
    line = order.lines.get()
    before = Stock.objects.get(store=store, listing=line.listing)
    labels = [package.label_code.lower() for package in order.packages.all()]

    handoff = services.handoff_confirm_packages(store=store, code=offer.pickup_code, labels=labels, acting_user=staff)

    order.refresh_from_db()
    after = Stock.objects.get(store=store, listing=line.listing)
    assert order.status == OrderStatus.PICKED_UP
    assert (after.on_hand, after.reserved) == (before.on_hand - 1, before.reserved - 1)
    assert (handoff.driver, handoff.staff, handoff.labels) == (driver, staff, sorted(label.upper() for label in labels))
    assert OrderEvent.objects.get(order=order, type="order.picked_up").data["driver"] == driver.pk
    route.refresh_from_db()
    assert route.status == RouteStatus.UNDER_WAY


def _accepted_while_packing(mall):
    """A route with an order still being picked (due about now, so the build takes it) and
    its driver: they get to the store before the order is ready."""
    store = make_store(mall=mall)
    order = make_order(store=store, **_near(mall, 2))
    order_accept(order=order, acting_user=None)
    order_start_picking(order=order, acting_user=None)
    Order.objects.filter(pk=order.pk).update(prep_due_at=timezone.now())
    driver = make_driver(market=mall.market, online=True, **_near(mall, 0.5))
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    return store, order, driver, route, offer


def test_handoff_pays_the_wait_at_a_store_that_was_still_packing_at_check_in(mall):
    store, order, driver, route, offer = _accepted_while_packing(mall)
    check_in = services.route_check_in(route=route, store=store, driver=driver)
    StoreCheckIn.objects.update(at=timezone.now() - dt.timedelta(minutes=15, seconds=10))
    order_record_picked(order=order, acting_user=None, picked={line.pk: line.quantity for line in order.lines.all()})
    order_mark_ready(order=order, acting_user=None, package_count=1)

    handoff = services.handoff_confirm_packages(
        store=store, code=offer.pickup_code, labels=[p.label_code for p in order.packages.all()], acting_user=None
    )

    assert check_in.store_was_ready is False
    assert handoff.wait_pay_cents == (15 - 5) * 30
    offer.refresh_from_db()
    route.refresh_from_db()
    assert route.wait_pay_cents == 300


def test_handoff_pays_no_wait_at_a_store_that_was_ready_at_check_in(mall):
    store, order, driver, route, offer = _accepted(mall)
    pay_before = offer.pay_cents
    check_in = services.route_check_in(route=route, store=store, driver=driver)
    StoreCheckIn.objects.update(at=timezone.now() - dt.timedelta(minutes=15, seconds=10))

    handoff = services.handoff_confirm_packages(
        store=store, code=offer.pickup_code, labels=[p.label_code for p in order.packages.all()], acting_user=None
    )

    assert check_in.store_was_ready is True
    assert (handoff.wait_pay_cents, handoff.checked_in_at) == (0, StoreCheckIn.objects.get().at)
    offer.refresh_from_db()
    route.refresh_from_db()
    assert (route.wait_pay_cents, offer.pay_cents) == (0, pay_before)


def _picked_up(mall, **order_fields):
    store = make_store(mall=mall)
    order = make_ready_order(store=store, **_near(mall, 2), **order_fields)
    driver = make_driver(market=mall.market, online=True, **_near(mall, 0.5))
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    services.handoff_confirm_packages(
        store=store, code=offer.pickup_code, labels=[p.label_code for p in order.packages.all()], acting_user=None
    )
    return order, driver, route, offer, route.stops.get()


def test_offer_forfeit_refused_after_pickup(mall):
    _order, driver, _route, offer, _stop = _picked_up(mall)

    with pytest.raises(ActionRefused, match="already picked up"):
        services.offer_forfeit(offer=offer, driver=driver)


def test_stop_deliver_with_photo_completes_route_and_offer(mall):
    order, driver, route, offer, stop = _picked_up(mall)

    services.stop_deliver(stop=stop, driver=driver, photo=SimpleUploadedFile("door.jpg", PHOTO))

    order.refresh_from_db()
    stop.refresh_from_db()
    route.refresh_from_db()
    offer.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert stop.status == StopStatus.DELIVERED
    assert stop.photo.read() == PHOTO
    assert (route.status, offer.status) == (RouteStatus.DONE, OfferStatus.COMPLETED)


def test_stop_deliver_refuses_wrong_pin_and_writes_nothing(mall, tmp_path):
    order, driver, _route, _offer, stop = _picked_up(mall, requires_pin=True)
    wrong = "0000" if delivery_pin_for(order) != "0000" else "1111"

    with pytest.raises(ActionRefused, match="PIN does not match"):
        services.stop_deliver(stop=stop, driver=driver, photo=SimpleUploadedFile("d.jpg", PHOTO), pin=wrong)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.PICKED_UP
    assert list(tmp_path.rglob("*.jpg")) == []


def test_stop_deliver_accepts_right_pin(mall):
    order, driver, _route, _offer, stop = _picked_up(mall, requires_pin=True)

    services.stop_deliver(
        stop=stop, driver=driver, photo=SimpleUploadedFile("d.jpg", PHOTO), pin=delivery_pin_for(order)
    )

    stop.refresh_from_db()
    assert (stop.status, stop.pin_verified) == (StopStatus.DELIVERED, True)


def test_stop_deliver_refused_for_another_driver(mall):
    _order, _driver, _route, _offer, stop = _picked_up(mall)
    other = make_driver(market=mall.market)

    with pytest.raises(ActionRefused, match="not on your route"):
        services.stop_deliver(stop=stop, driver=other, photo=SimpleUploadedFile("d.jpg", PHOTO))


def test_stop_mark_undeliverable_starts_return(mall):
    order, driver, route, _offer, stop = _picked_up(mall)

    services.stop_mark_undeliverable(stop=stop, driver=driver, reason="Nobody home, gate locked")

    order.refresh_from_db()
    assert (order.status, order.problem_reason) == (OrderStatus.RETURNING, "Nobody home, gate locked")
    assert list(order.events.values_list("type", flat=True))[-2:] == ["order.undeliverable", "order.returning"]
    route.refresh_from_db()
    assert route.status == RouteStatus.DONE


def test_routes_drop_cancelled_orders_withdraws_offer_of_emptied_route(mall):
    _store, order, _drivers, route, offer = _routed(mall)
    order_cancel(order=order, acting_user=None, reason="customer_request")

    assert services.routes_drop_cancelled_orders(now=timezone.now()) == 1

    route.refresh_from_db()
    offer.refresh_from_db()
    assert (route.status, offer.status) == (RouteStatus.CANCELLED, OfferStatus.WITHDRAWN)
    assert services.routes_drop_cancelled_orders(now=timezone.now()) == 0


def test_routes_drop_cancelled_orders_keeps_rest_of_route_and_handoff_skips_it(mall):
    store = make_store(mall=mall)
    kept = make_ready_order(store=store, **_near(mall, 2))
    gone = make_ready_order(store=store, **_near(mall, 2.1))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 0.5))
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    order_cancel(order=gone, acting_user=None, reason="customer_request")

    services.routes_drop_cancelled_orders(now=timezone.now())
    check = services.handoff_verify_code(store=store, code=offer.pickup_code)

    assert [stop.order for stop in check.stops] == [kept]
    assert check.labels == [package.label_code for package in kept.packages.all()]
    route.refresh_from_db()
    assert route.status == RouteStatus.ASSIGNED


def test_routes_drop_cancelled_orders_tells_driver_when_whole_route_goes(mall):
    _store, order, drivers, route, offer = _routed(mall)
    services.offer_accept(offer=offer, driver=drivers[0])
    order_cancel(order=order, acting_user=None, reason="customer_request")

    services.routes_drop_cancelled_orders(now=timezone.now())

    offer.refresh_from_db()
    assert offer.status == OfferStatus.FORFEITED
    assert set(Notification.objects.filter(kind="route.cancelled").values_list("user", flat=True)) == {
        drivers[0].user.pk
    }


def test_offer_accept_refused_once_a_document_expired_after_the_offer_went_out(mall):
    _store, _order, (first, _second, _third), route, offer = _routed(mall)
    lapsed = timezone.now().astimezone(mall.market.tz).date() - dt.timedelta(days=1)
    set_documents_expiry(first, lapsed, kind=DocumentKind.LICENCE)
    services.documents_sweep(now=timezone.now())

    with pytest.raises(ActionRefused) as refused:
        services.offer_accept(offer=offer, driver=first)

    assert refused.value.message == (
        f"You cannot take offers: driving licence expired on {lapsed:%b %d, %Y}. "
        "Send a valid one to Mallrun operations."
    )
    offer.refresh_from_db()
    route.refresh_from_db()
    assert (offer.status, offer.driver_id, route.status, route.driver_id) == (
        OfferStatus.OPEN,
        None,
        RouteStatus.OFFERING,
        None,
    )


def test_offer_accept_after_the_offer_expired_says_it_expired_not_taken(mall):
    _store, _order, (first, _second, _third), route, offer = _routed(mall)
    later = timezone.now() + dt.timedelta(seconds=61)
    for wave in range(3):
        services.offers_sweep(now=later + dt.timedelta(seconds=61 * wave))
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED

    with pytest.raises(ActionRefused) as refused:
        services.offer_accept(offer=offer, driver=first)

    assert (refused.value.code, refused.value.message) == (
        "expired",
        "This offer expired before your answer came in.",
    )


def test_offer_accept_after_the_offer_was_withdrawn_says_so_not_taken(mall):
    _store, order, (first, _second, _third), route, offer = _routed(mall)
    order_cancel(order=order, acting_user=None, reason="Shopper changed their mind")
    services.routes_drop_cancelled_orders(now=timezone.now())
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN

    with pytest.raises(ActionRefused) as refused:
        services.offer_accept(offer=offer, driver=first)

    assert (refused.value.code, refused.value.message) == (
        "withdrawn",
        "This offer was withdrawn: its orders were cancelled.",
    )


def test_driver_pause_refused_while_they_carry_a_route_so_its_packages_are_not_stranded(mall):
    store, order, (first, _second, _third), route, offer = _routed(mall)
    services.offer_accept(offer=offer, driver=first)
    offer.refresh_from_db()
    labels = [package.label_code for package in order.packages.all()]
    services.handoff_confirm_packages(store=store, code=offer.pickup_code, labels=labels, acting_user=None)

    with pytest.raises(ActionRefused) as refused:
        services.driver_pause(driver=first, acting_user=None, reason="Complaint to look into")

    assert refused.value.message == f"{first} is on a route: pause them once it is finished."
    first.refresh_from_db()
    assert first.status == DriverStatus.ACTIVE
    stop = services.stop_deliver(
        stop=route.stops.get(), driver=first, photo=SimpleUploadedFile("door.jpg", PHOTO, "image/jpeg")
    )
    assert stop.status == StopStatus.DELIVERED


def test_offer_forfeit_reoffers_to_a_wider_first_wave_than_the_first_offer(mall):
    MarketPaySettings.objects.create(market=mall.market, first_wave_size=2)
    _store, _order, drivers, route, offer = _routed(mall, drivers=8)
    assert OfferRecipient.objects.filter(offer=offer, wave=1).count() == 2
    services.offer_accept(offer=offer, driver=drivers[0])

    reoffer = services.offer_forfeit(offer=offer, driver=drivers[0], reason="Flat tyre")

    # The first wave of the re-offer: the first offer's 2, plus 3 more, never the driver who gave it back.
    offered = OfferRecipient.objects.filter(offer=reoffer, wave=1).order_by("rank")
    assert list(offered.values_list("driver", flat=True)) == [driver.pk for driver in drivers[1:6]]


def test_offer_accept_refused_as_busy_does_not_record_that_the_driver_came_too_late(mall):
    MarketPaySettings.objects.create(market=mall.market, max_stops=1)
    store = make_store(mall=mall)
    for miles in (2, 3):
        make_ready_order(store=store, **_near(mall, miles))
    driver = make_driver(market=mall.market, online=True, **_near(mall, 0.5))
    first, second = (route.offers.get() for route in services.routes_build_for_mall(mall=mall, now=timezone.now()))
    services.offer_accept(offer=first, driver=driver)

    with pytest.raises(ActionRefused, match="Finish your current route before taking another."):
        services.offer_accept(offer=second, driver=driver)

    # Not "Tried to accept after it was taken": nobody took it; the sweep times the answer out.
    assert OfferRecipient.objects.get(offer=second, driver=driver).answer == Answer.PENDING
