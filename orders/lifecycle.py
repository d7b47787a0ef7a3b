"""The order lifecycle of PRODUCT.md, declared once. Every status change goes through
`orders.services`, which checks it against this table."""

from django.db import models


class OrderStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    ACCEPTED = "accepted", "Accepted"
    PICKING = "picking", "Picking"
    READY = "ready", "Ready for pickup"
    PICKED_UP = "picked_up", "Picked up"
    DELIVERED = "delivered", "Delivered"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    SHORT = "short", "Item missing"
    UNDELIVERABLE = "undeliverable", "Undeliverable"
    RETURNING = "returning", "Returning to store"
    RETURNED = "returned", "Returned"


S = OrderStatus

# What an order is, said to a person ("Order 113-… has been picked up"), for refusals.
STANDING = {
    S.RECEIVED: "is new and not accepted yet",
    S.ACCEPTED: "is accepted",
    S.PICKING: "is being picked",
    S.READY: "is ready for pickup",
    S.PICKED_UP: "has been picked up",
    S.DELIVERED: "has been delivered",
    S.REJECTED: "was rejected",
    S.CANCELLED: "was cancelled",
    S.SHORT: "is waiting for a decision on a missing item",
    S.UNDELIVERABLE: "could not be delivered",
    S.RETURNING: "is on its way back to the store",
    S.RETURNED: "is back at the store",
}
# What moving an order to a status is called, for the same messages ("… cannot be rejected").
MOVE = {
    S.ACCEPTED: "accepted",
    S.PICKING: "started",
    S.READY: "marked ready",
    S.SHORT: "reported short",
    S.REJECTED: "rejected",
    S.CANCELLED: "cancelled",
    S.PICKED_UP: "handed to a driver",
    S.DELIVERED: "delivered",
    S.UNDELIVERABLE: "marked undeliverable",
    S.RETURNING: "sent back",
    S.RETURNED: "confirmed as returned",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    S.RECEIVED: frozenset({S.ACCEPTED, S.REJECTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.PICKING, S.REJECTED, S.CANCELLED}),
    S.PICKING: frozenset({S.READY, S.SHORT, S.REJECTED, S.CANCELLED}),
    # A missing item: the store sends the rest (when the marketplace allows partial
    # fulfilment) or rejects the order.
    S.SHORT: frozenset({S.READY, S.REJECTED, S.CANCELLED}),
    S.READY: frozenset({S.PICKED_UP, S.CANCELLED}),
    S.PICKED_UP: frozenset({S.DELIVERED, S.UNDELIVERABLE}),
    S.UNDELIVERABLE: frozenset({S.RETURNING}),
    S.RETURNING: frozenset({S.RETURNED}),
    S.DELIVERED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.RETURNED: frozenset(),
}

TERMINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
# Orders whose reserved stock is still held.
HOLDS_STOCK = frozenset({S.RECEIVED, S.ACCEPTED, S.PICKING, S.SHORT, S.READY})
# Statuses the store still has work to do on.
OPEN = frozenset({S.RECEIVED, S.ACCEPTED, S.PICKING, S.SHORT, S.READY, S.UNDELIVERABLE, S.RETURNING})
# Orders that never took up the store's packing time: the rest of an hour's orders count against
# its hourly capacity (same-day eligibility, PRODUCT.md).
NOT_COUNTED_FOR_CAPACITY = (S.REJECTED, S.CANCELLED)


def sources_of(target: str) -> frozenset[str]:
    """Every status from which `target` may be reached."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


def can_transition(source: str, target: str) -> bool:
    return target in TRANSITIONS.get(source, frozenset())
