"""Order changes made by drivers and at the store handoff: ready → picked_up → delivered, and
picked_up → undeliverable → returning → returned. Same pattern as `orders.services`: each checks
the declared lifecycle through `_transition` (a conditional UPDATE and an OrderEvent)."""

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orders.lifecycle import TERMINAL, OrderStatus
from orders.models import Order, OrderEvent, OrderLine
from orders.services import _record_event, _transition
from portal.errors import ActionRefused
from retailers.models import Stock

S = OrderStatus


def delivery_pin_for(order: Order) -> str:
    """The shopper's 4-digit PIN for an order that requires one. Derived (not stored) from the
    order id and the secret key, so the marketplace can show it to the shopper from the same
    function and nobody can guess it from the order number."""
    digest = hmac.new(settings.SECRET_KEY.encode(), order.marketplace_order_id.encode(), hashlib.sha256).hexdigest()
    return f"{int(digest[:8], 16) % 10000:04d}"


@transaction.atomic
def order_pick_up(
    *, order: Order, acting_user: AbstractBaseUser | None, actor_label: str | None = None, data: Mapping | None = None
) -> Order:
    """ready → picked_up: the store handed the packages to the driver.

    Side effects: the reserved units leave the store's stock (on_hand and reserved both drop by
    each line's reserved_quantity, which becomes 0); one `order.picked_up` event carrying `data`
    (driver, labels).
    """
    _transition(order=order, to=S.PICKED_UP, acting_user=acting_user, actor_label=actor_label, data=data)
    for line in order.lines.select_for_update().all():
        if line.reserved_quantity:
            Stock.objects.filter(store_id=order.store_id, listing_id=line.listing_id).update(
                reserved=F("reserved") - line.reserved_quantity, on_hand=F("on_hand") - line.reserved_quantity
            )
            OrderLine.objects.filter(pk=line.pk).update(reserved_quantity=0)
    return order


@transaction.atomic
def order_deliver(
    *,
    order: Order,
    acting_user: AbstractBaseUser | None,
    pin: str = "",
    photo_name: str = "",
    actor_label: str | None = None,
) -> Order:
    """picked_up → delivered, with proof: a photo, plus the shopper's PIN when required.

    Side effects: one `order.delivered` event with the proof.
    """
    if order.requires_pin and not hmac.compare_digest(pin.strip(), delivery_pin_for(order)):
        raise ActionRefused("That PIN does not match: ask the shopper for the PIN of this order.", code="wrong-pin")
    _transition(
        order=order,
        to=S.DELIVERED,
        acting_user=acting_user,
        actor_label=actor_label,
        data={"photo": photo_name, "pin_verified": order.requires_pin},
    )
    return order


@transaction.atomic
def order_mark_undeliverable(
    *, order: Order, acting_user: AbstractBaseUser | None, reason: str, actor_label: str | None = None
) -> Order:
    """picked_up → undeliverable → returning: the driver could not deliver and brings the
    packages back to the store.

    Side effects: two events (`order.undeliverable`, `order.returning`); problem_reason.
    """
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say why the order could not be delivered.", code="validation")
    _transition(
        order=order,
        to=S.UNDELIVERABLE,
        acting_user=acting_user,
        actor_label=actor_label,
        reason=reason,
        problem_reason=reason,
    )
    _transition(order=order, to=S.RETURNING, acting_user=acting_user, actor_label=actor_label, reason=reason)
    return order


@transaction.atomic
def order_confirm_returned(*, order: Order, acting_user: AbstractBaseUser | None) -> Order:
    """returning → returned: store staff have the packages back. Stock is not put back on the
    shelf automatically: staff check the goods and restock what is sellable.

    Side effects: one `order.returned` event.
    """
    _transition(order=order, to=S.RETURNED, acting_user=acting_user)
    return order


DELAYED = "order.delayed"


@transaction.atomic
def orders_flag_delayed(
    *, order_ids: Iterable[int], reason: str, actor_label: str = "dispatch", now: dt.datetime | None = None
) -> list[int]:
    """Dispatch found that these orders' deadlines are at risk (nobody took their route while a
    driver could still make it, or no route can carry them): each gets one `order.delayed` event
    (no status change), which reaches the marketplace through the feed and its webhooks. An order
    already flagged since its last status change, or finished, gets nothing more. Returns the
    ids of the orders flagged.

    Side effects: one OrderEvent (`order.delayed`, with the reason) per flagged order, and with
    it the feed event and webhook outbox rows of a marketplace order."""
    now = now or timezone.now()
    flagged = []
    orders = Order.objects.filter(pk__in=list(order_ids)).exclude(status__in=TERMINAL).order_by("pk")
    for order in orders:
        if OrderEvent.objects.filter(order=order, type=DELAYED, at__gte=order.status_changed_at).exists():
            continue
        _record_event(
            order=order,
            type=DELAYED,
            from_status=order.status,
            to_status=order.status,
            acting_user=None,
            actor_label=actor_label,
            at=now,
            reason=reason[:300],
        )
        flagged.append(order.pk)
    return flagged
