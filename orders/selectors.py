"""Reads for the store pages, scoped to the person's stores, with their joins decided here."""

import datetime as dt
from typing import NamedTuple

from django.db import connection
from django.db.models import Max, Prefetch, Q, QuerySet
from django.utils import timezone

from orders.lifecycle import OrderStatus
from orders.models import Order, OrderEvent, OrderLine, Package
from portal import localtime
from retailers.access import store_memberships_for
from retailers.models import Mall, Store, StoreMembership

S = OrderStatus
# The board's columns, in order: (key, heading, statuses). "Done today" is limited to orders
# whose status changed on the mall's current local date.
BOARD_COLUMNS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("new", "New", frozenset({S.RECEIVED, S.ACCEPTED})),
    ("picking", "Picking", frozenset({S.PICKING})),
    ("ready", "Ready for pickup", frozenset({S.READY})),
    ("done", "Done today", frozenset({S.PICKED_UP, S.DELIVERED, S.CANCELLED, S.REJECTED, S.RETURNED})),
    ("problems", "Problems", frozenset({S.SHORT, S.UNDELIVERABLE, S.RETURNING})),
)
DONE_STATUSES = BOARD_COLUMNS[3][2]
ACTIVE_STATUSES = frozenset().union(*(statuses for key, _, statuses in BOARD_COLUMNS if key != "done"))


class BoardRow(NamedTuple):
    pk: int
    updated_at: dt.datetime
    status: str


def local_day_bounds(store: Store, now: dt.datetime) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """The mall's local date at `now` and the instants it starts and ends (DST-safe)."""
    return localtime.local_day_bounds(now, store.mall.tz)


def board_last_change(store: Store) -> dt.datetime | None:
    """The newest Order.updated_at of the store: one index lookup (order_store_updated)."""
    return Order.objects.filter(store=store).aggregate(last=Max("updated_at"))["last"]


# Every tablet polls every few seconds and most polls change nothing, so this read is the floor
# of the board's cost. Written as SQL because composing the equivalent ORM query cost several
# times its execution (measured ~4.8 ms against ~0.6 ms on PostgreSQL). The newest order change
# walks the order_store_updated index backwards.
_POLL_STATE_SQL = """
SELECT s.updated_at, m.time_zone,
       (SELECT o.updated_at FROM {order} o WHERE o.store_id = s.id ORDER BY o.updated_at DESC LIMIT 1)
FROM {membership} sm
JOIN {store} s ON s.id = sm.store_id
JOIN {mall} m ON m.id = s.mall_id
WHERE sm.user_id = %s AND sm.store_id = %s AND sm.is_active
"""


def board_poll_state(*, user, store_id: int) -> tuple[dt.datetime, str, dt.datetime | None] | None:
    """(store.updated_at, mall time zone, newest Order.updated_at) if the user is active staff of
    the store, else None. One query: what an unchanged poll costs."""
    sql = _POLL_STATE_SQL.format(
        order=connection.ops.quote_name(Order._meta.db_table),
        membership=connection.ops.quote_name(StoreMembership._meta.db_table),
        store=connection.ops.quote_name(Store._meta.db_table),
        mall=connection.ops.quote_name(Mall._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, store_id])
        row = cursor.fetchone()
    if row is None:
        return None
    store_updated_at, time_zone, last_change = row
    return _aware(store_updated_at), time_zone, _aware(last_change) if last_change is not None else None


def _aware(value: dt.datetime | str) -> dt.datetime:
    # SQLite hands raw SQL its text; PostgreSQL an aware datetime.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)


def board_rows(store: Store, *, day_start: dt.datetime, day_end: dt.datetime) -> list[BoardRow]:
    """Light rows of every order on the board, in board order (deliver-by first)."""
    rows = (
        Order.objects.filter(store=store)
        .filter(
            Q(status__in=ACTIVE_STATUSES)
            | Q(status__in=DONE_STATUSES, status_changed_at__gte=day_start, status_changed_at__lt=day_end)
        )
        .order_by("deliver_by", "pk")
        .values_list("pk", "updated_at", "status")
    )
    return [BoardRow(*row) for row in rows]


def orders_for_cards(pks: list[int]) -> list[Order]:
    lines = OrderLine.objects.select_related("listing").order_by("pk")
    return list(Order.objects.filter(pk__in=pks).prefetch_related(Prefetch("lines", queryset=lines)))


def order_detail(order: Order) -> Order:
    """The order with what its page shows: lines with listings, packages, the full timeline."""
    lines = OrderLine.objects.select_related("listing").order_by("pk")
    events = OrderEvent.objects.order_by("at", "pk")
    return (
        Order.objects.select_related("store__mall", "store__seller")
        .prefetch_related(
            Prefetch("lines", queryset=lines),
            Prefetch("packages", queryset=Package.objects.order_by("sequence")),
            Prefetch("events", queryset=events),
        )
        .get(pk=order.pk)
    )


def order_search_for_staff(user, query: str, *, limit: int = 50) -> QuerySet[Order]:
    """Orders of the person's stores whose number starts with `query`, or that have a package
    with exactly that label code (any case); from three characters on, also those whose number,
    customer's name or an item's title contains it (any case): staff type the last digits of a
    number, a shopper's name or "linen"."""
    query = query.strip()
    store_ids = store_memberships_for(user).values("store_id")
    matches = Q(marketplace_order_id__startswith=query) | Q(packages__label_code__iexact=query)
    if len(query) >= 3:
        matches |= (
            Q(marketplace_order_id__icontains=query)
            | Q(customer_name__icontains=query)
            | Q(lines__listing__title__icontains=query)
        )
    return (
        Order.objects.filter(store_id__in=store_ids)
        .filter(matches)
        .select_related("store__mall")
        .distinct()
        .order_by("-placed_at", "pk")[:limit]
    )
