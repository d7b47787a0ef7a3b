"""Everything an order intake reads before it places and writes the order (orders.api.services,
orders.api.placement): the seller and its listings for the order's SKUs, the mall named (or every
mall), the program limits, the seller's stores there with their hours, their stock of those
listings and, where a mall has more than one of the seller's stores, their open orders.

On PostgreSQL that is one round trip: prepared statements (planned once per database session)
executed together in one simple-protocol message. Elsewhere (SQLite) plain ORM queries."""

import datetime as dt
import weakref
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from drivers.selectors import drivers_available, markets_with_driver_supply
from orders.lifecycle import OPEN
from orders.models import Order
from retailers.eligibility_sql import _NOT_COUNTED_FOR_CAPACITY, CAPACITY_WINDOW, orders_last_hour_by_store
from retailers.models import Listing, Mall, ProgramLimits, Seller, Stock, Store, StoreHours


@dataclass
class IntakeReads:
    seller: Seller | None
    # By seller SKU; only the order's SKUs that the seller has.
    listings: dict[str, Listing]
    # The mall named by the order (empty when unknown), or every mall when it names none.
    malls: list[Mall]
    limits: ProgramLimits
    # The seller's stores in `malls`, by pk, each with its mall and its hours prefetched.
    stores: list[Store]
    # Available units (on hand − reserved) by (store pk, listing pk).
    stock: dict[tuple[int, int], int] = field(default_factory=dict)
    # Open orders by store pk, for the stores that share their mall with another store of the
    # seller (the only ones placement compares); a store without open orders is missing.
    open_orders: dict[int, int] = field(default_factory=dict)
    # Each store's orders of the last hour, as the eligibility engine counts them for hourly
    # capacity (retailers.eligibility_sql.orders_last_hour_by_store); missing means none.
    orders_last_hour: dict[int, int] = field(default_factory=dict)
    # The markets with driver supply now (drivers.selectors.markets_with_driver_supply).
    driver_markets: set[int] = field(default_factory=set)


def intake_reads(
    *, seller_id: str, skus: list[str], mall_slug: str | None, now: dt.datetime | None = None
) -> IntakeReads:
    now = timezone.now() if now is None else now
    if connection.vendor == "postgresql":
        return _reads_in_one_round_trip(seller_id=seller_id, skus=skus, mall_slug=mall_slug, now=now)
    return _reads_with_orm(seller_id=seller_id, skus=skus, mall_slug=mall_slug, now=now)


def _with_hours(stores: list[Store], malls: dict[int, Mall], hours: list[StoreHours]) -> list[Store]:
    """Gives each store its mall and its prefetched hours, as select_related and
    prefetch_related would."""
    by_store: dict[int, list[StoreHours]] = {store.pk: [] for store in stores}
    for row in hours:
        by_store[row.store_id].append(row)
    for store in stores:
        store.mall = malls[store.mall_id]
        prefetched = store.hours.all()
        prefetched._result_cache = by_store[store.pk]
        prefetched._prefetch_done = True
        store._prefetched_objects_cache = {"hours": prefetched}
    return stores


def _reads_with_orm(*, seller_id: str, skus: list[str], mall_slug: str | None, now: dt.datetime) -> IntakeReads:
    listings = {
        listing.seller_sku: listing
        for listing in Listing.objects.filter(seller__marketplace_seller_id=seller_id, seller_sku__in=skus)
        .select_related("seller")
        .order_by()
    }
    if listings:
        seller = next(iter(listings.values())).seller
    else:
        seller = Seller.objects.filter(marketplace_seller_id=seller_id).first()
    malls = list(Mall.objects.filter(slug=mall_slug) if mall_slug is not None else Mall.objects.order_by("pk"))
    reads = IntakeReads(
        seller=seller,
        listings=listings,
        malls=malls,
        limits=ProgramLimits.current(),
        stores=[],
        driver_markets=markets_with_driver_supply(now=now),
    )
    if seller is None or not malls:
        return reads
    stores = list(Store.objects.filter(seller=seller, mall__in=malls).order_by("pk"))
    hours = list(StoreHours.objects.filter(store__in=stores).order_by("store_id", "weekday"))
    reads.stores = _with_hours(stores, {mall.pk: mall for mall in malls}, hours)
    reads.stock = {
        (row.store_id, row.listing_id): row.on_hand - row.reserved
        for row in Stock.objects.filter(store__in=stores, listing__in=list(listings.values()))
    }
    if stores:
        reads.orders_last_hour = orders_last_hour_by_store(store_ids=[store.pk for store in stores], now=now)
    shared = [store.pk for store in stores if any(o.mall_id == store.mall_id and o.pk != store.pk for o in stores)]
    if shared:
        reads.open_orders = dict(
            Order.objects.filter(store_id__in=shared, status__in=OPEN, is_training=False)
            .values_list("store_id")
            .annotate(count=Count("pk"))
            .order_by()
        )
    return reads


# --- PostgreSQL: one round trip.


def _columns(model, alias: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def _statements() -> dict[str, tuple[str, str]]:
    """name → (parameter types, SQL). The seller's stores are those of seller $1 in mall $2
    (every mall when $2 is NULL)."""
    seller_stores = """
        SELECT st.id FROM retailers_store st
          JOIN retailers_seller s ON s.id = st.seller_id JOIN retailers_mall m ON m.id = st.mall_id
         WHERE s.marketplace_seller_id = $1 AND ($2::text IS NULL OR m.slug = $2)"""
    open_statuses = ", ".join(f"'{status}'" for status in sorted(OPEN))
    not_counted = ", ".join(f"'{status}'" for status in _NOT_COUNTED_FOR_CAPACITY)
    return {
        # The seller, once per listing of the order's SKUs (with NULLs when it has none of them).
        "mallrun_intake_listings": (
            "text, text[]",
            f"""SELECT {_columns(Seller, "s")}, {_columns(Listing, "l")} FROM retailers_seller s
                  LEFT JOIN retailers_listing l ON l.seller_id = s.id AND l.seller_sku = ANY($2)
                 WHERE s.marketplace_seller_id = $1""",  # noqa: S608 - model columns, constants and $n parameters
        ),
        "mallrun_intake_mall": ("text", f"SELECT {_columns(Mall, 'm')} FROM retailers_mall m WHERE m.slug = $1"),  # noqa: S608 - model columns, constants and $n parameters
        "mallrun_intake_every_mall": ("", f"SELECT {_columns(Mall, 'm')} FROM retailers_mall m ORDER BY m.id"),  # noqa: S608 - model columns, constants and $n parameters
        "mallrun_intake_limits": (
            "",
            f"SELECT {_columns(ProgramLimits, 'p')} FROM retailers_programlimits p ORDER BY p.id LIMIT 1",  # noqa: S608 - model columns, constants and $n parameters
        ),
        "mallrun_intake_stores": (
            "text, text",
            f"SELECT {_columns(Store, 'st')} FROM retailers_store st WHERE st.id IN ({seller_stores}) ORDER BY st.id",  # noqa: S608 - model columns, constants and $n parameters
        ),
        "mallrun_intake_hours": (
            "text, text",
            f"""SELECT {_columns(StoreHours, "h")} FROM retailers_storehours h
                 WHERE h.store_id IN ({seller_stores}) ORDER BY h.store_id, h.weekday""",  # noqa: S608 - model columns, constants and $n parameters
        ),
        "mallrun_intake_stock": (
            "text, text, text[]",
            f"""SELECT k.store_id, k.listing_id, k.on_hand - k.reserved
                  FROM retailers_stock k JOIN retailers_listing l ON l.id = k.listing_id
                 WHERE k.store_id IN ({seller_stores}) AND l.seller_sku = ANY($3)""",  # noqa: S608 - model columns, constants and $n parameters
        ),
        # As retailers.eligibility_sql.orders_last_hour_by_store counts them: $3 now, $4 the window.
        "mallrun_intake_orders_last_hour": (
            "text, text, timestamptz, interval",
            f"""SELECT o.store_id, count(*) FROM orders_order o
                 WHERE o.store_id IN ({seller_stores}) AND o.placed_at > $3 - $4 AND o.placed_at <= $3
                   AND o.status NOT IN ({not_counted}) AND NOT o.is_training
                 GROUP BY o.store_id""",  # noqa: S608 - model columns, constants and $n parameters
        ),
        # Counted only where a mall has more than one of the seller's stores.
        "mallrun_intake_open_orders": (
            "text, text",
            f"""SELECT o.store_id, count(*) FROM orders_order o
                 WHERE o.status IN ({open_statuses}) AND NOT o.is_training AND o.store_id IN (
                       SELECT st.id FROM retailers_store st WHERE st.id IN ({seller_stores})
                          AND EXISTS (SELECT 1 FROM retailers_store other WHERE other.seller_id = st.seller_id
                                         AND other.mall_id = st.mall_id AND other.id <> st.id))
                 GROUP BY o.store_id""",  # noqa: S608 - model columns, constants and $n parameters
        ),
    }


_prepared_on: "weakref.WeakSet" = weakref.WeakSet()


def _prepare_once(cursor) -> None:
    # Planning these costs more than running them: prepared once per database session (as
    # long as its connection object lives), PostgreSQL keeps their plans.
    raw = connection.connection
    if raw in _prepared_on:
        return
    prepares = []
    for name, (types, sql) in _statements().items():
        prepares.append(f"PREPARE {name}{f' ({types})' if types else ''} AS {sql}")
    cursor.execute("; ".join(prepares))
    # The drivers' query comes compiled with %s placeholders (and literal %% for a percent sign).
    sql, _params = _driver_supply_query()
    parts = sql.split("%s")
    numbered = parts[0] + "".join(f"${number}{part}" for number, part in enumerate(parts[1:], start=1))
    cursor.execute(f"PREPARE mallrun_intake_driver_supply AS {numbered.replace('%%', '%')}")
    _prepared_on.add(raw)


def _rows(cursor) -> list[tuple]:
    rows = cursor.fetchall()
    cursor.nextset()
    return rows


# The drivers' own query for driver supply, compiled once per process with a stand-in clock that
# each intake replaces by its own: the drivers app decides what supply is, this only runs it.
_STAND_IN_NOW = dt.datetime(2999, 12, 31, 23, 59, 58, 123456, tzinfo=dt.UTC)
_driver_supply_sql: tuple[str, tuple] | None = None


def _driver_supply_query() -> tuple[str, tuple]:
    global _driver_supply_sql  # noqa: PLW0603 - compiled once per process
    if _driver_supply_sql is None:
        queryset = drivers_available(now=_STAND_IN_NOW).values_list("online_market_id", flat=True).distinct()
        _driver_supply_sql = queryset.query.sql_with_params()
    return _driver_supply_sql


def _driver_supply(now: dt.datetime) -> tuple[str, list]:
    """EXECUTE of the prepared driver supply query with `now`'s clock."""
    _sql, stand_in_params = _driver_supply_query()
    stand_ins = {_STAND_IN_NOW: now, _STAND_IN_NOW.date(): now.date()}
    params = [stand_ins.get(param, param) if isinstance(param, dt.date) else param for param in stand_in_params]
    if any(isinstance(param, dt.date) and param.year == _STAND_IN_NOW.year for param in params):
        raise RuntimeError("drivers_available() reads the clock in a form the intake cannot replace")
    return f"EXECUTE mallrun_intake_driver_supply ({', '.join(['%s'] * len(params))})", params


def _reads_in_one_round_trip(
    *, seller_id: str, skus: list[str], mall_slug: str | None, now: dt.datetime
) -> IntakeReads:
    skus = list(skus)
    statements: list[tuple[str, list]] = [
        ("EXECUTE mallrun_intake_listings (%s, %s)", [seller_id, skus]),
        ("EXECUTE mallrun_intake_mall (%s)", [mall_slug])
        if mall_slug is not None
        else ("EXECUTE mallrun_intake_every_mall", []),
        ("EXECUTE mallrun_intake_limits", []),
        ("EXECUTE mallrun_intake_stores (%s, %s)", [seller_id, mall_slug]),
        ("EXECUTE mallrun_intake_hours (%s, %s)", [seller_id, mall_slug]),
        ("EXECUTE mallrun_intake_stock (%s, %s, %s)", [seller_id, mall_slug, skus]),
        ("EXECUTE mallrun_intake_open_orders (%s, %s)", [seller_id, mall_slug]),
        ("EXECUTE mallrun_intake_orders_last_hour (%s, %s, %s, %s)", [seller_id, mall_slug, now, CAPACITY_WINDOW]),
        _driver_supply(now),
    ]
    sql = "; ".join(statement for statement, _ in statements)
    params = [param for _, statement_params in statements for param in statement_params]
    alias = connection.alias
    with connection.cursor() as cursor:
        _prepare_once(cursor)
        # Client-side parameters, one simple-protocol message: every result comes back at once.
        cursor.execute(sql, params)
        seller_rows, mall_rows, limit_rows, store_rows, hour_rows, stock_rows, open_rows, hour_counts = (
            _rows(cursor) for _ in range(8)
        )
        supply_rows = cursor.fetchall()
    seller_width = len(Seller._meta.concrete_fields)
    seller = Seller.from_db(alias, None, seller_rows[0][:seller_width]) if seller_rows else None
    listings = {}
    for row in seller_rows:
        if row[seller_width] is not None:
            listing = Listing.from_db(alias, None, row[seller_width:])
            listing.seller = seller
            listings[listing.seller_sku] = listing
    malls = [Mall.from_db(alias, None, row) for row in mall_rows]
    limits = ProgramLimits.from_db(alias, None, limit_rows[0]) if limit_rows else ProgramLimits()
    stores = [Store.from_db(alias, None, row) for row in store_rows]
    hours = [StoreHours.from_db(alias, None, row) for row in hour_rows]
    return IntakeReads(
        seller=seller,
        listings=listings,
        malls=malls,
        limits=limits,
        stores=_with_hours(stores, {mall.pk: mall for mall in malls}, hours),
        stock={(store_id, listing_id): available for store_id, listing_id, available in stock_rows},
        open_orders=dict(open_rows),
        orders_last_hour=dict(hour_counts),
        driver_markets={row[0] for row in supply_rows},
    )
