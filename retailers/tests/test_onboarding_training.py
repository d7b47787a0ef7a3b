"""The training order of the onboarding checklist: real board, labels and handoff with the
market's demo driver, delivered by the system; never the marketplace, never a real driver."""

from decimal import Decimal

import pytest
from django.utils import timezone

from drivers import services as driver_services
from drivers.lifecycle import DriverStatus, OfferStatus
from drivers.models import Handoff, OfferRecipient, Route, RouteStatus, RouteStop, StopStatus
from drivers.tasks import build_routes
from drivers.tests.factories import make_driver, make_ready_order
from orders import services as order_services
from orders.lifecycle import OrderStatus
from orders.models import FeedEvent, Order, WebhookDelivery
from orders.tests.api_helpers import make_api_client
from portal.errors import ActionRefused
from portal.tests.factories import make_listing, make_mall, make_staff, make_stock, make_store, make_user
from retailers import onboarding
from retailers.models import StaffRole, Stock, StoreEvent, StoreStatus

pytestmark = pytest.mark.django_db


def _take_to_ready(order: Order, user) -> Order:
    order_services.order_accept(order=order, acting_user=user)
    order_services.order_start_picking(order=order, acting_user=user)
    order_services.order_record_picked(
        order=order, acting_user=user, picked={line.pk: line.quantity for line in order.lines.all()}
    )
    order_services.order_mark_ready(order=order, acting_user=user, package_count=2)
    return order


def _onboarding_store(**fields):
    return make_store(**{"status": StoreStatus.ONBOARDING, "mall": make_mall(name="Fashion Show"), **fields})


def test_training_order_create_has_demo_lines_and_holds_no_stock() -> None:
    store = _onboarding_store(name="Zara")
    real = make_listing(seller=store.seller)
    make_stock(store=store, listing=real, on_hand=4)
    manager = make_staff(store=store, role=StaffRole.MANAGER).user

    order = onboarding.training_order_create(store=store, acting_user=manager)

    assert order.is_training is True
    assert order.status == OrderStatus.RECEIVED
    assert order.api_client_id is None
    assert [(line.listing.seller_sku, line.quantity, line.reserved_quantity) for line in order.lines.all()] == [
        ("TRAINING-TEE", 2, 0),
        ("TRAINING-MUG", 1, 0),
    ]
    assert {line.listing.seller.marketplace_seller_id for line in order.lines.all()} == {"mallrun-training"}
    assert list(Stock.objects.values_list("on_hand", "reserved")) == [(4, 0)]
    assert list(order.events.values_list("type", "actor_label")) == [("order.received", "Mallrun training (system)")]
    assert list(StoreEvent.objects.filter(store=store).values_list("type", flat=True)) == [
        "store.training_order_created"
    ]


def test_training_order_refused_while_one_is_open() -> None:
    store = _onboarding_store()
    first = onboarding.training_order_create(store=store, acting_user=None)

    with pytest.raises(ActionRefused) as refused:
        onboarding.training_order_create(store=store, acting_user=None)

    assert refused.value.code == "training-open"
    assert refused.value.message == f"Training order {first.number} is still under way: finish it on the board first."
    assert Order.objects.filter(store=store).count() == 1


def test_training_order_refused_for_suspended_store() -> None:
    store = _onboarding_store(status=StoreStatus.SUSPENDED)

    with pytest.raises(ActionRefused) as refused:
        onboarding.training_order_create(store=store, acting_user=None)

    assert refused.value.code == "illegal-transition"
    assert Order.objects.count() == 0


def test_training_order_never_reaches_marketplace_feed_or_webhooks() -> None:
    store = _onboarding_store()
    issued = make_api_client(webhook_url="https://marketplace.example/hooks")
    real = make_ready_order(store=store)
    Order.objects.filter(pk=real.pk).update(api_client=issued.client)
    real.refresh_from_db()
    training = onboarding.training_order_create(store=store, acting_user=None)
    # Even an order wrongly tied to a client stays out of the feed when it is a training order.
    Order.objects.filter(pk=training.pk).update(api_client=issued.client)
    training.refresh_from_db()

    order_services.order_accept(order=training, acting_user=None)
    order_services.order_cancel(order=real, acting_user=None, reason="shopper changed their mind")

    assert list(FeedEvent.objects.values_list("order_id", "type")) == [(real.pk, "order.cancelled")]
    assert list(WebhookDelivery.objects.values_list("order_id", flat=True)) == [real.pk]


def test_routes_build_for_mall_skips_training_orders() -> None:
    store = _onboarding_store()
    mall = store.mall
    make_driver(market=mall.market, online=True, latitude=mall.latitude, longitude=mall.longitude)
    real = make_ready_order(store=store, latitude=mall.latitude + Decimal("0.02"), longitude=mall.longitude)
    training = _take_to_ready(onboarding.training_order_create(store=store, acting_user=None), None)

    routes = driver_services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)

    assert [list(route.stops.values_list("order_id", flat=True)) for route in routes] == [[real.pk]]
    assert not RouteStop.objects.filter(order=training).exists()


def test_build_routes_task_leaves_mall_with_only_a_training_order_alone() -> None:
    store = _onboarding_store()
    make_driver(market=store.mall.market, online=True)
    training = _take_to_ready(onboarding.training_order_create(store=store, acting_user=None), None)

    built = build_routes()

    assert built == 0
    assert Route.objects.count() == 0
    training.refresh_from_db()
    assert training.status == OrderStatus.READY


def test_training_driver_is_marked_and_never_offered_real_routes() -> None:
    store = _onboarding_store()
    mall = store.mall
    demo = onboarding.training_driver_for(mall.market)
    real_driver = make_driver(market=mall.market, online=True, latitude=mall.latitude, longitude=mall.longitude)
    make_ready_order(store=store, latitude=mall.latitude + Decimal("0.02"), longitude=mall.longitude)

    [route] = driver_services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)

    recipients = OfferRecipient.objects.filter(offer__route=route, offered_at__isnull=False)
    offered = set(recipients.values_list("driver", flat=True))
    assert offered == {real_driver.pk}
    assert str(demo) == "Training driver (demo, not a real person)"
    assert demo.status == DriverStatus.INACTIVE
    assert demo.is_online is False
    assert demo.user.is_active is False
    assert demo.user.has_usable_password() is False
    assert onboarding.training_driver_for(mall.market) == demo


def test_training_order_call_driver_refused_until_ready() -> None:
    store = _onboarding_store()
    order = onboarding.training_order_create(store=store, acting_user=None)

    with pytest.raises(ActionRefused) as refused:
        onboarding.training_order_call_driver(order=order)

    assert refused.value.code == "not-ready"
    assert Route.objects.count() == 0


def test_training_order_call_driver_refuses_a_real_order() -> None:
    store = _onboarding_store()
    real = make_ready_order(store=store)

    with pytest.raises(ActionRefused) as refused:
        onboarding.training_order_call_driver(order=real)

    assert refused.value.code == "not-training"
    assert Route.objects.count() == 0


def test_training_order_goes_through_real_handoff_and_system_delivers_it() -> None:
    store = _onboarding_store()
    associate = make_staff(store=store, user=make_user("dana")).user
    order = _take_to_ready(onboarding.training_order_create(store=store, acting_user=associate), associate)

    offer = onboarding.training_order_call_driver(order=order, acting_user=associate)
    again = onboarding.training_order_call_driver(order=order, acting_user=associate)
    labels = sorted(order.packages.values_list("label_code", flat=True))
    check = driver_services.handoff_verify_code(store=store, code=offer.pickup_code)
    driver_services.handoff_confirm_packages(store=store, code=offer.pickup_code, labels=labels, acting_user=associate)
    order.refresh_from_db()
    status_after_handoff = order.status
    moved = onboarding.training_orders_sweep()

    assert again.pk == offer.pk
    assert len(offer.pickup_code) == 6
    assert offer.status == OfferStatus.ACCEPTED
    assert check.driver == onboarding.training_driver_for(store.mall.market)
    assert sorted(check.labels) == labels
    assert status_after_handoff == OrderStatus.PICKED_UP
    assert Handoff.objects.get().labels == labels
    assert moved == 1
    order.refresh_from_db()
    offer.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.events.get(type="order.delivered").actor_label == "Mallrun training (system)"
    assert offer.status == OfferStatus.COMPLETED
    assert offer.route.status == RouteStatus.DONE
    assert RouteStop.objects.get(order=order).status == StopStatus.DELIVERED
    assert onboarding.delivered_training_order(store) == order
    assert FeedEvent.objects.count() == 0
    assert onboarding.training_orders_sweep() == 0


def test_training_orders_sweep_calls_demo_driver_for_ready_training_order() -> None:
    store = _onboarding_store()
    order = _take_to_ready(onboarding.training_order_create(store=store, acting_user=None), None)

    moved = onboarding.training_orders_sweep()

    assert moved == 1
    route, offer = onboarding.training_route(order)
    assert route.status == RouteStatus.ASSIGNED
    assert offer.driver == onboarding.training_driver_for(store.mall.market)
    assert onboarding.training_orders_sweep() == 0


def test_dispatch_sweeps_leave_the_training_route_alone() -> None:
    store = _onboarding_store()
    make_driver(market=store.mall.market, online=True)
    order = _take_to_ready(onboarding.training_order_create(store=store, acting_user=None), None)  # 2 packages
    offer = onboarding.training_order_call_driver(order=order)

    replanned = driver_services.routes_replan_packed_orders(now=timezone.now())
    built = build_routes()
    swept = driver_services.offers_sweep(now=timezone.now())

    route, after = onboarding.training_route(order)
    assert (replanned, built, swept) == (0, 0, 0)
    assert after == offer
    assert (after.status, after.pickup_code) == (OfferStatus.ACCEPTED, offer.pickup_code)
    assert route.status == RouteStatus.ASSIGNED
    assert list(RouteStop.objects.filter(order=order).values_list("is_current", "planned_packages")) == [(True, 2)]
    assert Route.objects.count() == 1
