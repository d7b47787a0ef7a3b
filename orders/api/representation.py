"""The order as the marketplace sees it (the contract's "order representation"). No driver
surname, phone or location ever appears here."""

import datetime as dt
import zoneinfo

from django.db import connection
from django.db.models import Max, OuterRef, Prefetch, QuerySet, Subquery

from orders.lifecycle import OrderStatus
from orders.models import FeedEvent, Order, OrderEvent, OrderLine, Package
from retailers.models import Listing


def rfc3339(value: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    value = value.astimezone(tz or dt.UTC)
    text = value.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if tz is None else text


def orders_for_representation(queryset: QuerySet[Order]) -> QuerySet[Order]:
    """Everything the representation reads: one query for the orders, three prefetches."""
    # MAX over the order's own events (its FK index): "ORDER BY seq DESC LIMIT 1" would walk the
    # global seq index instead.
    last_seq = (
        FeedEvent.objects.filter(order_id=OuterRef("pk"))
        .order_by()
        .values("order_id")
        .annotate(last=Max("seq"))
        .values("last")
    )
    status_changes = OrderEvent.objects.exclude(to_status="").only("order_id", "from_status", "to_status", "at")
    lines = OrderLine.objects.select_related("listing").only("order_id", "quantity", "picked", "listing__seller_sku")
    return (
        queryset.select_related("store__mall")
        .annotate(last_event_seq=Subquery(last_seq))
        .prefetch_related(
            Prefetch("lines", queryset=lines),
            # Package's default ordering goes through the order: not needed within one order.
            Prefetch("packages", queryset=Package.objects.order_by("sequence")),
            Prefetch("events", queryset=status_changes, to_attr="status_events"),
        )
    )


def _document(order: Order, *, lines: list[dict], packages: list[dict], timeline: list[dict], seq) -> dict:
    return {
        "marketplace_order_id": order.marketplace_order_id,
        "status": order.status,
        "mall": order.store.mall.slug,
        "store": {"name": order.store.name, "unit": order.store.unit},
        "deliver_by": rfc3339(order.deliver_by, order.store.mall.tz),
        "lines": lines,
        "packages": packages,
        "timeline": timeline,
        # The order's last numbered event: answers that follow a write number it first
        # (orders.outbox.sequence_events_for_answer).
        "last_event_seq": seq,
    }


def order_representation(order: Order) -> dict:
    """For an order fetched through orders_for_representation."""
    return _document(
        order,
        lines=[
            {"sku": line.listing.seller_sku, "quantity": line.quantity, "picked": line.picked}
            for line in order.lines.all()
        ],
        # Packages move with their order: they are ready, picked up or delivered together.
        packages=[{"label": package.label_code, "status": order.status} for package in order.packages.all()],
        timeline=[
            {"status": event.to_status, "at": rfc3339(event.at)}
            for event in order.status_events
            if event.to_status != event.from_status
        ],
        seq=order.last_event_seq,
    )


def new_order_representation(order: Order, *, lines: list[tuple[Listing, int]], seq: int | None) -> dict:
    """The order just received, from what the intake already holds (and the `seq` its
    order.received event was given): no query."""
    return _document(
        order,
        lines=[{"sku": listing.seller_sku, "quantity": quantity, "picked": 0} for listing, quantity in lines],
        packages=[],
        timeline=[{"status": OrderStatus.RECEIVED, "at": rfc3339(order.created_at)}],
        seq=seq,
    )


def represent(order_id: int) -> dict:
    return order_representation(orders_for_representation(Order.objects.filter(pk=order_id)).get())


# The whole representation in one statement: a replay is answered with a single lookup of the
# unique order id, the lines, packages and timeline aggregated alongside it. Times come back as
# whole unix seconds (the representation's precision).
REPLAY_SQL = """
SELECT o.api_client_id AS owner, o.api_body_sha256 AS sha256, o.marketplace_order_id AS order_id, o.status,
       m.slug, m.time_zone, s.name, s.unit, floor(extract(epoch FROM o.deliver_by))::bigint AS deliver_by,
       (SELECT max(f.seq) FROM orders_feedevent f WHERE f.order_id = o.id) AS seq,
       (SELECT coalesce(json_agg(json_build_array(l.seller_sku, ol.quantity, ol.picked) ORDER BY ol.id), '[]')
          FROM orders_orderline ol JOIN retailers_listing l ON l.id = ol.listing_id WHERE ol.order_id = o.id) AS lines,
       (SELECT coalesce(json_agg(p.label_code ORDER BY p.sequence), '[]')
          FROM orders_package p WHERE p.order_id = o.id) AS labels,
       (SELECT coalesce(json_agg(json_build_array(e.to_status, floor(extract(epoch FROM e.at))::bigint)
                                 ORDER BY e.at, e.id), '[]')
          FROM orders_orderevent e
         WHERE e.order_id = o.id AND e.to_status <> '' AND e.to_status <> e.from_status) AS timeline
  FROM orders_order o
  JOIN retailers_store s ON s.id = o.store_id
  JOIN retailers_mall m ON m.id = s.mall_id
 WHERE o.marketplace_order_id = %s
"""


def _from_unix(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def replay_representation(*, client_id: int, marketplace_order_id: str, body_sha256: str) -> tuple[bool, dict | None]:
    """Whether an order with this id exists, and its representation when it is this client's
    order sent with this body hash (None otherwise)."""
    if connection.vendor != "postgresql":
        order = orders_for_representation(Order.objects.filter(marketplace_order_id=marketplace_order_id)).first()
        if order is None:
            return False, None
        if order.api_client_id != client_id or order.api_body_sha256 != body_sha256:
            return True, None
        return True, order_representation(order)
    with connection.cursor() as cursor:
        cursor.execute(REPLAY_SQL, [marketplace_order_id])
        row = cursor.fetchone()
    return replay_from_row(row, client_id=client_id, body_sha256=body_sha256)


def replay_from_row(row: tuple | None, *, client_id: int, body_sha256: str) -> tuple[bool, dict | None]:
    """replay_representation's answer from a row of REPLAY_SQL (None, or all None, for no order)."""
    if row is None or row[2] is None:
        return False, None
    owner, sha256, order_id, status, mall, time_zone, store_name, unit, deliver_by, seq, lines, labels, timeline = row
    if owner != client_id or sha256 != body_sha256:
        return True, None
    return True, {
        "marketplace_order_id": order_id,
        "status": status,
        "mall": mall,
        "store": {"name": store_name, "unit": unit},
        "deliver_by": rfc3339(_from_unix(deliver_by), zoneinfo.ZoneInfo(time_zone)),
        "lines": [{"sku": sku, "quantity": quantity, "picked": picked} for sku, quantity, picked in lines],
        "packages": [{"label": label, "status": status} for label in labels],
        "timeline": [{"status": to_status, "at": rfc3339(_from_unix(at))} for to_status, at in timeline],
        "last_event_seq": seq,
    }
