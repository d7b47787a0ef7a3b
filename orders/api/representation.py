"""The order as the marketplace sees it (the contract's "order representation"). No driver
surname, phone or location ever appears here."""

import datetime as dt
import zoneinfo

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Max, OuterRef, Prefetch, QuerySet, Subquery

from drivers.models import RouteStatus, RouteStop
from orders.api.proof import proof_photo_url
from orders.lifecycle import OrderStatus
from orders.models import FeedEvent, Order, OrderEvent, OrderLine, Package
from retailers.models import Listing

# A route's driver shows from their acceptance of it (an offering or at-risk route has none).
ACCEPTED_ROUTE = (RouteStatus.ASSIGNED, RouteStatus.UNDER_WAY, RouteStatus.DONE)


def rfc3339(value: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    value = value.astimezone(tz or dt.UTC)
    text = value.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if tz is None else text


def orders_for_representation(queryset: QuerySet[Order]) -> QuerySet[Order]:
    """Everything the representation reads: one query for the orders, four prefetches."""
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
    # The order's current stop, with only the driver's first name: never surname, phone or position.
    stops = (
        RouteStop.objects.filter(is_current=True)
        .select_related("route__driver__user")
        .only(
            "order_id",
            "eta",
            "photo",
            "pin_verified",
            "finished_at",
            "route__status",
            "route__driver__user__first_name",
        )
    )
    return (
        queryset.select_related("store__mall")
        .annotate(last_event_seq=Subquery(last_seq))
        .prefetch_related(
            Prefetch("lines", queryset=lines),
            # Package's default ordering goes through the order: not needed within one order.
            Prefetch("packages", queryset=Package.objects.order_by("sequence")),
            Prefetch("events", queryset=status_changes, to_attr="status_events"),
            Prefetch("route_stops", queryset=stops, to_attr="current_stops"),
        )
    )


def driver_and_proof(
    *,
    status: str,
    route_status: str | None,
    first_name: str | None,
    eta: dt.datetime,
    photo: str | None,
    pin_verified: bool | None,
    finished_at: dt.datetime | None,
    tz: dt.tzinfo,
) -> dict:
    """The representation's `driver` (from the route's acceptance) and `proof` (after delivery)
    keys, from the order's current route stop; absent keys when they do not apply."""
    parts = {}
    if route_status in ACCEPTED_ROUTE and first_name is not None:
        parts["driver"] = {"first_name": first_name, "eta": rfc3339(eta, tz)}
    if status == OrderStatus.DELIVERED and photo and finished_at is not None:
        parts["proof"] = {"photo_url": proof_photo_url(photo, finished_at), "pin_verified": bool(pin_verified)}
    return parts


def _stop_parts(order: Order) -> dict:
    stop = order.current_stops[0] if order.current_stops else None
    if stop is None:
        return {}
    driver = stop.route.driver
    return driver_and_proof(
        status=order.status,
        route_status=stop.route.status,
        first_name=driver.user.first_name if driver is not None else None,
        eta=stop.eta,
        photo=stop.photo.name,
        pin_verified=stop.pin_verified,
        finished_at=stop.finished_at,
        tz=order.store.mall.tz,
    )


def _document(
    order: Order, *, lines: list[dict], packages: list[dict], timeline: list[dict], seq, extra: dict | None = None
) -> dict:
    return {
        "marketplace_order_id": order.marketplace_order_id,
        "status": order.status,
        "mall": order.store.mall.slug,
        "store": {"name": order.store.name, "unit": order.store.unit},
        "deliver_by": rfc3339(order.deliver_by, order.store.mall.tz),
        "lines": lines,
        "packages": packages,
        "timeline": timeline,
        **(extra or {}),
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
        extra=_stop_parts(order),
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
       -- Each line's SKU by its listing's primary key: a join let the prepared plan hash the
       -- whole listing table when it was planned small (3 ms a replay at 1,600 listings).
       (SELECT coalesce(json_agg(json_build_array(
                   (SELECT l.seller_sku FROM retailers_listing l WHERE l.id = ol.listing_id), ol.quantity, ol.picked)
                   ORDER BY ol.id), '[]')
          FROM orders_orderline ol WHERE ol.order_id = o.id) AS lines,
       (SELECT coalesce(json_agg(p.label_code ORDER BY p.sequence), '[]')
          FROM orders_package p WHERE p.order_id = o.id) AS labels,
       (SELECT coalesce(json_agg(json_build_array(e.to_status, floor(extract(epoch FROM e.at))::bigint)
                                 ORDER BY e.at, e.id), '[]')
          FROM orders_orderevent e
         WHERE e.order_id = o.id AND e.to_status <> '' AND e.to_status <> e.from_status) AS timeline,
       (SELECT json_build_array(r.status, u.first_name, floor(extract(epoch FROM rs.eta))::bigint, rs.photo,
                                rs.pin_verified, floor(extract(epoch FROM rs.finished_at))::bigint)
          FROM drivers_routestop rs
          JOIN drivers_route r ON r.id = rs.route_id
          LEFT JOIN drivers_driver d ON d.id = r.driver_id
          LEFT JOIN {user_table} u ON u.id = d.user_id
         WHERE rs.order_id = o.id AND rs.is_current) AS stop
  FROM orders_order o
  JOIN retailers_store s ON s.id = o.store_id
  JOIN retailers_mall m ON m.id = s.mall_id
 WHERE o.marketplace_order_id = %s
""".replace("{user_table}", get_user_model()._meta.db_table)


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
    (
        owner,
        sha256,
        order_id,
        status,
        mall,
        time_zone,
        store_name,
        unit,
        deliver_by,
        seq,
        lines,
        labels,
        timeline,
        stop,
    ) = row
    if owner != client_id or sha256 != body_sha256:
        return True, None
    tz = zoneinfo.ZoneInfo(time_zone)
    parts = {}
    if stop is not None:
        route_status, first_name, eta, photo, pin_verified, finished_at = stop
        parts = driver_and_proof(
            status=status,
            route_status=route_status,
            first_name=first_name,
            eta=_from_unix(eta),
            photo=photo,
            pin_verified=pin_verified,
            finished_at=_from_unix(finished_at) if finished_at is not None else None,
            tz=tz,
        )
    return True, {
        "marketplace_order_id": order_id,
        "status": status,
        "mall": mall,
        "store": {"name": store_name, "unit": unit},
        "deliver_by": rfc3339(_from_unix(deliver_by), tz),
        "lines": [{"sku": sku, "quantity": quantity, "picked": picked} for sku, quantity, picked in lines],
        "packages": [{"label": label, "status": status} for label in labels],
        "timeline": [{"status": to_status, "at": rfc3339(_from_unix(at))} for to_status, at in timeline],
        **parts,
        "last_event_seq": seq,
    }
