"""Everything an order intake reads before it places and writes the order (orders.api.services,
orders.api.placement): the seller and its listings for the order's SKUs, the mall named (or every
mall), the program limits, the seller's stores there with their hours, their stock of those
listings and, where a mall has more than one of the seller's stores, their open orders.

On PostgreSQL that is one prepared statement (planned once per database session) that answers
with one row of JSON arrays. Elsewhere (SQLite) plain ORM queries."""

import datetime as dt
import functools
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from drivers.selectors import driver_supply_market_ids, markets_with_driver_supply
from orders.lifecycle import NOT_COUNTED_FOR_CAPACITY, OPEN
from orders.models import Order
from portal.jsonrows import from_json_array, json_array_sql
from portal.prepared import Prepared, numbered, prepare
from retailers.eligibility_sql import CAPACITY_WINDOW, orders_last_hour_by_store
from retailers.models import Listing, Mall, ProgramLimits, Seller, Stock, Store, StoreHours


@dataclass
class IntakeReads:
    seller: Seller | None
    # By seller SKU; only the order's SKUs that the seller has.
    listings: dict[str, Listing]
    # The mall named by the order (empty when unknown), or every mall when it names none.
    malls: list[Mall]
    limits: ProgramLimits
    # The seller's stores in `malls`, by pk, each with its mall.
    stores: list[Store]
    # Each of those stores' opening hours, {weekday: (opens_at, closes_at)} by store pk (as
    # retailers.eligibility_sql.store_facts reads them); a store without hours is missing.
    hours: dict[int, dict[int, tuple[dt.time, dt.time]]] = field(default_factory=dict)
    # Available units (on hand − reserved) by (store pk, listing pk).
    stock: dict[tuple[int, int], int] = field(default_factory=dict)
    # Open orders by store pk, for the stores that share their mall with another store of the
    # seller (the only ones placement compares); a store without open orders is missing.
    open_orders: dict[int, int] = field(default_factory=dict)
    # Each store's orders of the last hour, as the eligibility engine counts them for hourly
    # capacity (retailers.eligibility_sql.orders_last_hour_by_store); missing means none. On
    # PostgreSQL counted up to the store's hourly capacity, which is all the rule compares.
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


def _with_malls(stores: list[Store], malls: list[Mall]) -> list[Store]:
    """Gives each store its mall, as select_related would."""
    by_pk = {mall.pk: mall for mall in malls}
    for store in stores:
        store.mall = by_pk[store.mall_id]
    return stores


def _hours_by_store(rows) -> dict[int, dict[int, tuple[dt.time, dt.time]]]:
    """(store id, weekday, opens_at, closes_at) rows as IntakeReads.hours."""
    hours: dict[int, dict[int, tuple[dt.time, dt.time]]] = {}
    for store_id, weekday, opens_at, closes_at in rows:
        hours.setdefault(store_id, {})[weekday] = (opens_at, closes_at)
    return hours


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
    reads.stores = _with_malls(stores, malls)
    reads.hours = _hours_by_store(
        StoreHours.objects.filter(store__in=stores).values_list("store_id", "weekday", "opens_at", "closes_at")
    )
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


# --- PostgreSQL: one prepared statement, one round trip, one result row of JSON arrays.


@functools.cache
def _statement() -> Prepared:
    """$1 the seller id, $2 the SKUs, $3 the mall slug (NULL: every mall), $4 now, $5 the
    capacity window, then the drivers' own supply query's parameters."""
    open_statuses = ", ".join(f"'{status}'" for status in sorted(OPEN))
    not_counted = ", ".join(f"'{status}'" for status in NOT_COUNTED_FOR_CAPACITY)
    supply_sql, _params = _driver_supply_query()
    supply = numbered(supply_sql, start=6)
    sql = f"""WITH seller AS (
    SELECT * FROM retailers_seller WHERE marketplace_seller_id = $1
), listing AS (
    SELECT * FROM retailers_listing WHERE seller_id = (SELECT id FROM seller) AND seller_sku = ANY($2)
), mall AS (
    SELECT * FROM retailers_mall WHERE $3::text IS NULL OR slug = $3
), store AS (
    SELECT * FROM retailers_store WHERE seller_id IN (SELECT id FROM seller) AND mall_id IN (SELECT id FROM mall)
), shared AS MATERIALIZED (
    -- Stores that share their mall with another of the seller's stores: placement compares
    -- their open orders (materialized, so no store's orders are counted before this is known).
    SELECT st.id FROM store st
     WHERE EXISTS (SELECT 1 FROM store other WHERE other.mall_id = st.mall_id AND other.id <> st.id)
)
SELECT
    (SELECT {json_array_sql(Seller, "s")} FROM seller s),
    (SELECT json_agg({json_array_sql(Listing, "l")}) FROM listing l),
    (SELECT json_agg({json_array_sql(Mall, "m")} ORDER BY m.id) FROM mall m),
    (SELECT {json_array_sql(ProgramLimits, "p")} FROM retailers_programlimits p ORDER BY p.id LIMIT 1),
    (SELECT json_agg({json_array_sql(Store, "st")} ORDER BY st.id) FROM store st),
    (SELECT json_agg(json_build_array(h.store_id, h.weekday, h.opens_at, h.closes_at))
       FROM retailers_storehours h WHERE h.store_id IN (SELECT id FROM store)),
    (SELECT json_agg(json_build_array(k.store_id, k.listing_id, k.on_hand - k.reserved)) FROM retailers_stock k
      WHERE k.store_id IN (SELECT id FROM store) AND k.listing_id IN (SELECT id FROM listing)),
    -- Open orders, only where a mall has more than one of the seller's stores; counted per
    -- store (an index range each), stores without any left out.
    (SELECT json_agg(json_build_array(st.id, c.n)) FROM shared st CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM orders_order o
         WHERE o.store_id = st.id AND o.status IN ({open_statuses}) AND NOT o.is_training) c
      WHERE c.n > 0),
    -- As retailers.eligibility_sql.orders_last_hour_by_store counts them, but only up to the
    -- store's hourly capacity: all the rule compares, and a busy store's hour costs no more.
    (SELECT json_agg(json_build_array(st.id, c.n)) FROM store st CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM (
            SELECT FROM orders_order o
             WHERE o.store_id = st.id AND o.placed_at > $4 - $5 AND o.placed_at <= $4
               AND o.status NOT IN ({not_counted}) AND NOT o.is_training
             LIMIT st.hourly_capacity) counted) c
      WHERE c.n > 0),
    (SELECT json_agg(d.market) FROM ({supply}) AS d (market))"""  # noqa: S608 - model columns, constants and $n parameters
    return Prepared("mallrun_intake", "text, text[], text, timestamptz, interval", sql)


# The drivers' own query for driver supply, compiled once per process with a stand-in clock that
# each intake replaces by its own: the drivers app decides what supply is, this only runs it.
_STAND_IN_NOW = dt.datetime(2999, 12, 31, 23, 59, 58, 123456, tzinfo=dt.UTC)


@functools.cache
def _driver_supply_query() -> tuple[str, tuple]:
    return driver_supply_market_ids(now=_STAND_IN_NOW).query.sql_with_params()


def _driver_supply_params(now: dt.datetime) -> list:
    """The supply query's parameters with `now`'s clock in place of the stand-in."""
    _sql, stand_in_params = _driver_supply_query()
    stand_ins = {_STAND_IN_NOW: now, _STAND_IN_NOW.date(): now.date()}
    params = [stand_ins.get(param, param) if isinstance(param, dt.date) else param for param in stand_in_params]
    if any(isinstance(param, dt.date) and param.year == _STAND_IN_NOW.year for param in params):
        raise RuntimeError("drivers_available() reads the clock in a form the intake cannot replace")
    return params


def _reads_in_one_round_trip(
    *, seller_id: str, skus: list[str], mall_slug: str | None, now: dt.datetime
) -> IntakeReads:
    statement = _statement()
    params = [seller_id, list(skus), mall_slug, now, CAPACITY_WINDOW, *_driver_supply_params(now)]
    with connection.cursor() as cursor:
        prepare(cursor, statement)
        cursor.execute(statement.execute(len(params)), params)
        (
            seller_row,
            listing_rows,
            mall_rows,
            limits_row,
            store_rows,
            hour_rows,
            stock_rows,
            open_rows,
            hour_counts,
            markets,
        ) = cursor.fetchone()
    seller = from_json_array(Seller, seller_row) if seller_row is not None else None
    listings = {}
    for row in listing_rows or ():
        listing = from_json_array(Listing, row)
        listing.seller = seller
        listings[listing.seller_sku] = listing
    malls = [from_json_array(Mall, row) for row in mall_rows or ()]
    stores = [from_json_array(Store, row) for row in store_rows or ()]
    time = dt.time.fromisoformat
    hours = ((store_id, day, time(opens), time(closes)) for store_id, day, opens, closes in hour_rows or ())
    return IntakeReads(
        seller=seller,
        listings=listings,
        malls=malls,
        limits=from_json_array(ProgramLimits, limits_row) if limits_row is not None else ProgramLimits(),
        stores=_with_malls(stores, malls),
        hours=_hours_by_store(hours),
        stock={(store_id, listing_id): available for store_id, listing_id, available in stock_rows or ()},
        open_orders=dict(open_rows or ()),
        orders_last_hour=dict(hour_counts or ()),
        driver_markets=set(markets or ()),
    )
