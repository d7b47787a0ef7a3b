"""orders.delivery: the driver-side order transitions."""

import pytest

from drivers.tests.factories import make_ready_order
from orders.delivery import (
    delivery_pin_for,
    order_confirm_returned,
    order_deliver,
    order_mark_undeliverable,
    order_pick_up,
)
from orders.lifecycle import OrderStatus
from portal.errors import ActionRefused
from portal.tests.factories import make_listing, make_stock, make_store, make_user
from retailers.models import Stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=10, reserved=0)
    order = make_ready_order(store=store, lines=[(listing, 3)])
    return order, listing


def test_order_pick_up_takes_reserved_units_out_of_stock(ready):
    order, listing = ready

    order_pick_up(order=order, acting_user=make_user(), data={"driver": 7})

    stock = Stock.objects.get(store=order.store, listing=listing)
    assert (stock.on_hand, stock.reserved) == (7, 0)
    assert order.lines.get().reserved_quantity == 0
    event = order.events.get(type="order.picked_up")
    assert (event.from_status, event.to_status, event.data) == ("ready", "picked_up", {"driver": 7})


def test_order_pick_up_twice_refused(ready):
    order, _listing = ready
    order_pick_up(order=order, acting_user=None)

    with pytest.raises(ActionRefused, match="has been picked up already"):
        order_pick_up(order=order, acting_user=None)


def test_order_deliver_records_proof(ready):
    order, _listing = ready
    order_pick_up(order=order, acting_user=None)

    order_deliver(order=order, acting_user=None, photo_name="proof/a.jpg")

    assert order.status == OrderStatus.DELIVERED
    assert order.events.get(type="order.delivered").data == {"photo": "proof/a.jpg", "pin_verified": False}


def test_order_deliver_checks_pin_when_required(ready):
    order, _listing = ready
    type(order).objects.filter(pk=order.pk).update(requires_pin=True)
    order.refresh_from_db()
    order_pick_up(order=order, acting_user=None)
    wrong = "0000" if delivery_pin_for(order) != "0000" else "1111"

    with pytest.raises(ActionRefused, match="PIN does not match"):
        order_deliver(order=order, acting_user=None, pin=wrong)
    order_deliver(order=order, acting_user=None, pin=delivery_pin_for(order))

    assert order.status == OrderStatus.DELIVERED


def test_delivery_pin_is_four_digits_and_stable(ready):
    order, _listing = ready

    assert delivery_pin_for(order) == delivery_pin_for(order)
    assert len(delivery_pin_for(order)) == 4
    assert delivery_pin_for(order).isdigit()


def test_order_undeliverable_then_returned(ready):
    order, _listing = ready
    order_pick_up(order=order, acting_user=None)

    order_mark_undeliverable(order=order, acting_user=None, reason="No answer")
    assert (order.status, order.problem_reason) == (OrderStatus.RETURNING, "No answer")
    order_confirm_returned(order=order, acting_user=None)

    assert order.status == OrderStatus.RETURNED
    assert list(order.events.values_list("type", flat=True))[-3:] == [
        "order.undeliverable",
        "order.returning",
        "order.returned",
    ]


def test_order_undeliverable_needs_reason(ready):
    order, _listing = ready
    order_pick_up(order=order, acting_user=None)

    with pytest.raises(ActionRefused, match="Say why"):
        order_mark_undeliverable(order=order, acting_user=None, reason=" ")
