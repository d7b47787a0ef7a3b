"""The set-based eligibility recompute: the rules of `retailers.eligibility` over every affected
listing × mall in a few SQL statements that run the same on SQLite and PostgreSQL.

Two steps:
1. Store states (few rows: one per store): the clock-driven store reasons (paused, closed, after
   cutoff, at capacity) and today's cutoff, computed in Python with the pure rules because they
   need the mall's time zone, and saved in EligibilityStoreState.
2. The results, set-based over listings × stores × stock, writing only the rows whose result
   changed (so `computed_at` moves only on a change) and deleting rows whose seller has no store
   left in that mall:
   - some listings or stores (the recompute after a change): one INSERT … SELECT … ON CONFLICT
     over them, then one DELETE (_write_small);
   - whole malls or everything (the sweeps and the nightly run): one statement per mall, each
     grouping only that mall's stock per listing. The first run writes the rows straight from the
     computation (_insert_all; on PostgreSQL it builds each mall's partition and swaps it in,
     eligibility_partitions); later runs collect what differs in a temporary table, then write
     it with one UPDATE, one INSERT and one DELETE (_write_changes). On PostgreSQL helper
     connections take some of the malls at the same time (eligibility_parallel).
"""

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from orders.lifecycle import NOT_COUNTED_FOR_CAPACITY
from retailers import eligibility as rules
from retailers import eligibility_partitions as partitions
from retailers.eligibility_parallel import SharedTable, compare_in_parallel
from retailers.models import EligibilityStoreState, ProgramLimits, Store, result_id_sql

CAPACITY_WINDOW = dt.timedelta(hours=1)
_CHUNK = 2000


def markets_with_driver_supply(*, now: dt.datetime) -> set[int]:
    """The one place eligibility asks about drivers."""
    from drivers.selectors import markets_with_driver_supply as drivers_supply

    return drivers_supply(now=now)


def orders_last_hour_by_store(*, store_ids: Iterable[int], now: dt.datetime) -> dict[int, int]:
    from orders.models import Order

    rows = (
        Order.objects.filter(
            store_id__in=list(store_ids), placed_at__gt=now - CAPACITY_WINDOW, placed_at__lte=now, is_training=False
        )
        .exclude(status__in=NOT_COUNTED_FOR_CAPACITY)
        .values("store_id")
        .annotate(n=Count("pk"))
    )
    return {row["store_id"]: row["n"] for row in rows}


def store_facts(
    store: Store, *, orders_last_hour: int, hours: Mapping[int, tuple[dt.time, dt.time]] | None = None
) -> rules.StoreFacts:
    """The pure facts of a store (with `mall` already loaded, and `hours` unless they are given
    as {weekday: (opens_at, closes_at)})."""
    return rules.StoreFacts(
        id=store.pk,
        name=store.name,
        status=store.status,
        time_zone=store.mall.time_zone,
        cutoff=store.same_day_cutoff,
        hours=hours if hours is not None else {row.weekday: (row.opens_at, row.closes_at) for row in store.hours.all()},
        hourly_capacity=store.hourly_capacity,
        orders_last_hour=orders_last_hour,
    )


def store_states_refresh(*, stores: Q | None = None, now: dt.datetime) -> set[int]:
    """Brings EligibilityStoreState up to date for the stores matching `stores` (all when None).

    Side effects: creates or updates EligibilityStoreState rows. Returns the ids of the stores
    whose state changed (new, or different reasons, candidacy or cutoff).
    """
    queryset = Store.objects.select_related("mall").prefetch_related("hours")
    if stores is not None:
        queryset = queryset.filter(stores)
    store_list = list(queryset)
    counts = orders_last_hour_by_store(store_ids=[store.pk for store in store_list], now=now)
    current = {state.store_id: state for state in EligibilityStoreState.objects.filter(store__in=store_list)}
    fresh, changed_rows, changed = [], [], set()
    for store in store_list:
        facts = store_facts(store, orders_last_hour=counts.get(store.pk, 0))
        candidate = facts.status in rules.CANDIDATE_STATUSES
        bits = rules.store_reason_bits(facts, now=now)
        until = rules.store_eligible_until(facts, now=now).astimezone(dt.UTC)
        state = current.get(store.pk)
        if state is None:
            fresh.append(
                EligibilityStoreState(
                    store=store, candidate=candidate, reason_bits=bits, eligible_until=until, computed_at=now
                )
            )
            changed.add(store.pk)
        elif (state.candidate, state.reason_bits, state.eligible_until) != (candidate, bits, until):
            state.candidate, state.reason_bits, state.eligible_until, state.computed_at = candidate, bits, until, now
            changed_rows.append(state)
            changed.add(store.pk)
    EligibilityStoreState.objects.bulk_create(fresh)
    EligibilityStoreState.objects.bulk_update(
        changed_rows, ["candidate", "reason_bits", "eligible_until", "computed_at"]
    )
    return changed


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


_TABLE = "retailers_eligibilityresult"
_ID_SQL = result_id_sql(listing="c.listing_id", mall="c.mall_id")
# The computation's SELECT and parameters for a scope (_compute_sql with the run's limits,
# supply and seller × mall summary bound).
_ComputeFor = Callable[..., tuple[str, list]]
_NEW = "eligibility_new"


@dataclass(frozen=True)
class Helpers:
    """Other connections that compare malls beside the recompute's own (eligibility_parallel)."""

    count: int
    tables: list[SharedTable]  # _summary_tables(): what they copy from this connection first


def _seller_malls_sql(*, supplied: Sequence[int]) -> tuple[str, list]:
    """One row per seller × mall with stores: how many candidate stores, the OR of their store
    reasons, the first store with none (and its name, for the restock hint), and the mall's
    no_driver_supply bit."""
    b = rules.BIT
    supplied = list(supplied) or [-1]
    store_codes = ("store_paused", "store_closed", "after_cutoff", "store_at_capacity")
    or_bits = " | ".join(
        f"MAX(CASE WHEN ss0.candidate THEN ss0.reason_bits & {b[code]} ELSE 0 END)" for code in store_codes
    )
    sql = f"""
        SELECT g.*, cn.name AS min_clean_name FROM (
            SELECT st0.seller_id AS seller_id, st0.mall_id AS mall_id,
                SUM(CASE WHEN ss0.candidate THEN 1 ELSE 0 END) AS n_cand,
                ({or_bits}) AS or_bits,
                MIN(CASE WHEN ss0.candidate AND ss0.reason_bits = 0 THEN st0.id END) AS min_clean_id,
                MAX(CASE WHEN mm.market_id IN ({_placeholders(supplied)}) THEN 0
                         ELSE {b["no_driver_supply"]} END) AS mbit
            FROM retailers_store st0
            JOIN retailers_eligibilitystorestate ss0 ON ss0.store_id = st0.id
            JOIN retailers_mall mm ON mm.id = st0.mall_id
            GROUP BY st0.seller_id, st0.mall_id
        ) g
        -- The restock hint's store, named here per seller × mall rather than per row.
        LEFT JOIN retailers_store cn ON cn.id = g.min_clean_id
    """  # noqa: S608
    return sql, supplied


_SELLER_MALLS = "eligibility_seller_malls"
_CANDIDATE_STORES = "eligibility_candidate_stores"


def _summary_tables(*, supplied: Sequence[int]) -> list[SharedTable]:
    """The bulk runs' two small temporary tables: (name, the SELECT that fills it, its
    parameters, the statements that index it), in the order they are created."""
    sql, params = _seller_malls_sql(supplied=supplied)
    return [
        # The seller × mall summary, indexed: listings then join it in their own order through an
        # index lookup per seller, so the 800,000 listing × mall rows come out already sorted by
        # listing for the merge joins that follow, instead of being sorted again.
        (_SELLER_MALLS, sql, params, [f"CREATE INDEX ON {_SELLER_MALLS} (seller_id, mall_id)"]),
        # The candidate stores with their mall and state in one small table: each of the 1,000,000
        # stock rows then takes one lookup instead of two (store, then state); about a quarter of
        # the stock grouping's CPU.
        (
            _CANDIDATE_STORES,
            """
            SELECT st0.id, st0.mall_id, ss0.reason_bits, ss0.eligible_until
            FROM retailers_store st0 JOIN retailers_eligibilitystorestate ss0 ON ss0.store_id = st0.id
            WHERE ss0.candidate
            """,
            [],
            [f"CREATE UNIQUE INDEX ON {_CANDIDATE_STORES} (id)"],
        ),
    ]


def _seller_malls_create(cursor, *, tables: Sequence[SharedTable]) -> str:
    """Creates the summary tables (PostgreSQL, bulk runs; _summary_tables) and returns the
    summary's name."""
    for name, select, params, indexes in tables:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TEMPORARY TABLE {name} AS {select}", params)
        for index in indexes:
            cursor.execute(index)
        cursor.execute(f"ANALYZE {name}")
    return _SELLER_MALLS


def _seller_malls_drop(cursor) -> None:
    cursor.execute(f"DROP TABLE {_SELLER_MALLS}, {_CANDIDATE_STORES}")


def _compute_sql(
    *,
    scope: "_Scope",
    limits: rules.ProgramLimitFacts,
    supplied: Sequence[int],
    seller_malls: str | None = None,
) -> tuple[str, list]:
    """A SELECT of (listing_id, mall_id, eligible, reason_bits, hint, eligible_until) for every
    listing × mall in the scope, and its parameters.

    It reads stock like the floor query does (only rows with available units, grouped per
    listing and mall) and gets everything else per seller × mall from the few store states:
    - a listing passes when some candidate store with no store reason has it available;
    - otherwise its store reasons are the OR of its candidate stores' reasons, plus out_of_stock
      when fewer candidate stores have it available than there are candidate stores;
    - the restock hint names the first store with no store reason (none of them has it, or it
      would pass); the resume hint the first store paused and nothing else that has it.
    """
    b = rules.BIT
    # PostgreSQL flattens the nested SELECTs and would then evaluate the reason bits expression
    # once per use (eligible, reason_bits, hint, eligible_until); OFFSET 0 keeps the subquery,
    # so each row's bits are computed once (about a sixth of the computation on 800,000 rows).
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    if scope.one_mall:
        # One mall: stock groups per listing alone (its store rows read store by store, then
        # sorted on one integer), the join to listings is one-to-one on the listing, and rows come
        # out in listing order with no sort of the result rows.
        stock_mall, stock_key, stock_on = "", "", "a.listing_id = l.id"
        fence = f" ORDER BY l.id{fence}"
    else:
        stock_mall, stock_key = " s.mall_id AS mall_id,", ", s.mall_id"
        stock_on = "a.listing_id = l.id AND a.mall_id = s.mall_id"
    sizes = sorted(limits.allowed_size_classes) or [""]
    categories = sorted(limits.allowed_categories)
    category_sql = (
        f"CASE WHEN l.category IN ({_placeholders(categories)}) THEN 0 ELSE {b['category_excluded']} END"
        if categories
        else "0"
    )
    if seller_malls is None:
        summary, summary_params = _seller_malls_sql(supplied=supplied)
        summary = f"({summary})"
        # Stock rows of candidate stores: s the store, ss its state.
        stock_from = (
            "retailers_stock st JOIN retailers_store s ON s.id = st.store_id"
            " JOIN retailers_eligibilitystorestate ss ON ss.store_id = st.store_id"
        )
        state, candidate = "ss", "ss.candidate AND "
    else:
        summary, summary_params = seller_malls, []
        # The same from the bulk run's candidate stores table (store and state in one row).
        stock_from = f"retailers_stock st JOIN {_CANDIDATE_STORES} s ON s.id = st.store_id"
        state, candidate = "s", ""
    # Only constants and placeholders are formatted into the SQL; every value is a parameter.
    sql = f"""
        SELECT r.listing_id AS listing_id, r.mall_id AS mall_id, r.bits = 0 AS eligible, r.bits AS reason_bits,
            CASE
                WHEN r.bits = 0 OR r.other_bits <> 0 THEN ''
                WHEN r.restock_id IS NOT NULL THEN 'restock 1 unit at ' || r.restock_name
                -- Rare (no clean store, a paused one has it): a lookup only for those rows.
                WHEN r.resume_id IS NOT NULL THEN 'resume same-day at '
                    || (SELECT hs.name FROM retailers_store hs WHERE hs.id = r.resume_id)
                ELSE ''
            END AS hint,
            CASE WHEN r.bits = 0 THEN r.until END AS eligible_until
        FROM (
            SELECT p.listing_id, p.mall_id, p.until, p.other_bits, p.restock_id, p.restock_name, p.resume_id,
                (p.store_bits | p.other_bits) AS bits
            FROM (
                SELECT l.id AS listing_id, s.mall_id AS mall_id, a.until AS until,
                    CASE WHEN s.n_cand = 0 THEN {b["no_live_store"]}
                         WHEN COALESCE(a.n_pass, 0) > 0 THEN 0
                         ELSE (s.or_bits | (CASE WHEN COALESCE(a.n_avail, 0) < s.n_cand
                                            THEN {b["out_of_stock"]} ELSE 0 END))
                    END AS store_bits,
                    ((CASE WHEN l.weight_grams > %s THEN {b["too_heavy"]} ELSE 0 END)
                     + (CASE WHEN l.size_class IN ({_placeholders(sizes)}) THEN 0 ELSE {b["oversize"]} END)
                     + (CASE WHEN l.hazmat THEN {b["hazmat"]} ELSE 0 END)
                     + ({category_sql})
                     + s.mbit) AS other_bits,
                    CASE WHEN COALESCE(a.n_pass, 0) = 0 THEN s.min_clean_id END AS restock_id,
                    s.min_clean_name AS restock_name,
                    a.resume_id AS resume_id
                FROM retailers_listing l
                JOIN {summary} s ON s.seller_id = l.seller_id
                LEFT JOIN (
                    SELECT st.listing_id AS listing_id,{stock_mall}
                        COUNT(*) AS n_avail,
                        SUM(CASE WHEN {state}.reason_bits = 0 THEN 1 ELSE 0 END) AS n_pass,
                        MAX(CASE WHEN {state}.reason_bits = 0 THEN {state}.eligible_until END) AS until,
                        MIN(CASE WHEN {state}.reason_bits = {b["store_paused"]} THEN s.id END) AS resume_id
                    FROM {stock_from}
                    WHERE {candidate}st.on_hand > st.reserved AND {scope.inner_sql}
                    GROUP BY st.listing_id{stock_key}
                ) a ON {stock_on}
                WHERE {scope.sql}{fence}
            ) p
        ) r
    """  # noqa: S608
    params = [limits.max_weight_grams, *sizes, *categories, *summary_params, *scope.params, *scope.params]
    return sql, params


def _differs(left: str, right: str) -> str:
    distinct = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"
    return (
        f"({left}.reason_bits <> {right}.reason_bits OR {left}.hint <> {right}.hint"
        f" OR {left}.eligible_until {distinct} {right}.eligible_until)"
    )


_DELETE_ORPHANS_SQL = """
    DELETE FROM retailers_eligibilityresult
    WHERE {scope} AND NOT EXISTS (
        SELECT 1 FROM retailers_store s JOIN retailers_listing l ON l.seller_id = s.seller_id
        WHERE l.id = retailers_eligibilityresult.listing_id AND s.mall_id = retailers_eligibilityresult.mall_id
    )
"""


def _write_small(cursor, *, compute: str, params: list, at: object, scope: "_Scope") -> int:
    """For a few thousand rows: one upsert that changes only what differs, then orphans."""
    cursor.execute(
        f"""
        INSERT INTO {_TABLE} ({partitions.COLUMNS})
        SELECT {_ID_SQL}, c.listing_id, c.mall_id, c.eligible, c.reason_bits, c.hint, c.eligible_until, %s
        FROM ({compute}) c
        WHERE 1 = 1
        ON CONFLICT (listing_id, mall_id) DO UPDATE SET
            eligible = excluded.eligible,
            reason_bits = excluded.reason_bits,
            hint = excluded.hint,
            eligible_until = excluded.eligible_until,
            computed_at = excluded.computed_at
        WHERE {_differs(_TABLE, "excluded")}
        """,  # noqa: S608
        [at, *params],
    )
    written = max(cursor.rowcount, 0)
    cursor.execute(_DELETE_ORPHANS_SQL.format(scope=scope.result_sql), scope.result_params)
    return written


# The bulk runs' planner settings on PostgreSQL. Big groupings and sorted joins (one statement per
# mall): enough memory to keep them off the disk, no parallel workers (each would redo the grouped
# stock), and no JIT: its compile time on a plan this size (about 1.5 s) costs more than the whole
# statement saves. Within a mall, stock, listings and stored results can all be read in listing
# order (their indexes), so sorted groupings and merge joins stream them; hashing 200,000 rows on
# each side of two joins costs about twice as much, and the first run's insert wants that order.
_BULK_SETTINGS = {
    "work_mem": "'128MB'",
    "max_parallel_workers_per_gather": "0",
    "jit": "off",
    "enable_hashjoin": "off",
    "enable_hashagg": "off",
}


def _write_bulk(cursor, *, compute_for: _ComputeFor, at: object, scope: "_Scope", helpers: Helpers | None) -> int:
    """For whole malls or everything: the first run inserts straight from the computation; later
    runs compute into a small temporary table only the rows that differ from what is stored
    (new, changed or orphaned), then write just those. An upsert would lock (and so write)
    every unchanged row; this touches only the changed ones."""
    postgres = connection.vendor == "postgresql"
    if postgres:
        for setting, value in _BULK_SETTINGS.items():
            cursor.execute(f"SET LOCAL {setting} = {value}")
    try:
        cursor.execute(f"SELECT 1 FROM {_TABLE} WHERE {scope.result_sql} LIMIT 1", scope.result_params)  # noqa: S608
        if cursor.fetchone() is None:
            # Nothing stored yet (the first run): insert straight from the computation.
            return _insert_all(cursor, compute_for=compute_for, at=at, scope=scope, helpers=helpers)
        return _write_changes(cursor, compute_for=compute_for, at=at, scope=scope, helpers=helpers)
    finally:
        if postgres:
            for setting in _BULK_SETTINGS:
                cursor.execute(f"SET LOCAL {setting} TO DEFAULT")


def _insert_all(cursor, *, compute_for: _ComputeFor, at: object, scope: "_Scope", helpers: Helpers | None) -> int:
    """The first run: nothing stored for the scope's malls. On PostgreSQL each mall's partition
    is built as a table of its own, on helper connections too, and swapped in (with `helpers`;
    retailers.eligibility_partitions). On SQLite the rows go straight into the table.

    Either way a mall's rows are written in listing order, one statement per mall: each groups only
    its mall's stock per listing and yields its rows already in that order, so the primary key
    (mall, then listing, in the id) and the unique (listing, mall) build from presorted rows, where
    one statement for all malls grouped per (listing, mall) and sorted all 800,000 result rows
    (about 0.4 s more on the bench)."""
    malls = []
    for mall_id in _scope_malls(cursor, scope=scope):
        compute, params = compute_for(scope=_one_mall_scope(mall_id))
        malls.append((mall_id, compute, params))
    if connection.vendor == "postgresql":
        return partitions.build_and_swap(
            cursor,
            builds=partitions.builds_for(malls, at=at),
            helpers=helpers.count if helpers else 0,
            shared_tables=helpers.tables if helpers else [],
            planner_settings=[f"SET LOCAL {setting} = {value}" for setting, value in _BULK_SETTINGS.items()],
        )
    written = 0
    for _, compute, params in malls:
        cursor.execute(
            f"""
            INSERT INTO {_TABLE} ({partitions.COLUMNS})
            SELECT {_ID_SQL}, c.listing_id, c.mall_id, c.eligible, c.reason_bits, c.hint, c.eligible_until, %s
            FROM ({compute}) c
            ORDER BY c.listing_id
            """,  # noqa: S608
            [at, *params],
        )
        written += max(cursor.rowcount, 0)
    return written


def _scope_malls(cursor, *, scope: "_Scope") -> list[int]:
    """The ids of the malls in a bulk scope (everything, or some malls), in order."""
    cursor.execute(
        f"SELECT m.mall_id FROM (SELECT id AS mall_id FROM retailers_mall) m WHERE {scope.result_sql} ORDER BY 1",  # noqa: S608
        scope.result_params,
    )
    return [mall_id for (mall_id,) in cursor.fetchall()]


def _write_changes(cursor, *, compute_for: _ComputeFor, at: object, scope: "_Scope", helpers: Helpers | None) -> int:
    """Mall by mall, one pass joins the mall's computation to its stored rows (a full join on
    the listing, so a stored row whose listing × mall pair is gone shows up too) and keeps only
    what differs in a small temporary table; then one UPDATE, one INSERT and one DELETE write
    just those rows. Per mall (as the first run) rather than all malls in one pass: the stock
    groups per listing, and both sides of each join come in listing order without the sort of
    800,000 computed rows and the re-read of grouped rows that the (listing, mall) pairs needed
    (bench: about 0.15 s of 1.5 s). With `helpers`, other connections compare some of the malls
    at the same time (retailers.eligibility_parallel)."""
    postgres = connection.vendor == "postgresql"
    mall_ids = _scope_malls(cursor, scope=scope)
    if not mall_ids:
        return 0  # no mall in the scope, so neither rows to compute nor stored rows
    comparisons = []
    for mall_id in mall_ids:
        mall = _one_mall_scope(mall_id)
        compute, params = compute_for(scope=mall)
        comparisons.append(
            (
                f"""
                SELECT c.listing_id, c.mall_id, c.eligible, c.reason_bits, c.hint, c.eligible_until,
                    r.listing_id AS stored_listing_id, r.mall_id AS stored_mall_id
                FROM ({compute}) c
                FULL JOIN (
                    SELECT listing_id, mall_id, reason_bits, hint, eligible_until FROM {_TABLE} WHERE {mall.result_sql}
                ) r ON r.listing_id = c.listing_id
                WHERE c.listing_id IS NULL OR r.listing_id IS NULL OR {_differs("r", "c")}
                """,  # noqa: S608
                [*params, *mall.result_params],
            )
        )
    cursor.execute(f"DROP TABLE IF EXISTS {_NEW}")
    if helpers and len(comparisons) > 1:
        first, first_params = comparisons[0]
        cursor.execute(f"CREATE TEMPORARY TABLE {_NEW} AS {first} WITH NO DATA", first_params)
        compare_in_parallel(
            cursor,
            target=_NEW,
            statements=comparisons,
            shared_tables=helpers.tables,
            settings=[f"SET LOCAL {setting} = {value}" for setting, value in _BULK_SETTINGS.items()],
            helpers=min(helpers.count, len(comparisons) - 1),
        )
    else:
        # The first mall's rows create the temporary table, the others add to it.
        for number, (statement, params) in enumerate(comparisons):
            start = f"CREATE TEMPORARY TABLE {_NEW} AS" if number == 0 else f"INSERT INTO {_NEW}"
            cursor.execute(f"{start} {statement}", params)
    if postgres:
        cursor.execute(f"ANALYZE {_NEW}")
    cursor.execute(
        f"""
        UPDATE {_TABLE} SET
            eligible = n.eligible, reason_bits = n.reason_bits, hint = n.hint,
            eligible_until = n.eligible_until, computed_at = %s
        FROM {_NEW} n
        WHERE {_TABLE}.listing_id = n.listing_id AND {_TABLE}.mall_id = n.mall_id
            AND n.listing_id IS NOT NULL AND n.stored_listing_id IS NOT NULL
        """,  # noqa: S608
        [at],
    )
    written = max(cursor.rowcount, 0)
    cursor.execute(
        f"""
        INSERT INTO {_TABLE} ({partitions.COLUMNS})
        SELECT {result_id_sql(listing="n.listing_id", mall="n.mall_id")}, n.listing_id, n.mall_id, n.eligible,
            n.reason_bits, n.hint, n.eligible_until, %s
        FROM {_NEW} n WHERE n.stored_listing_id IS NULL
        ORDER BY n.listing_id, n.mall_id
        """,  # noqa: S608
        [at],
    )
    written += max(cursor.rowcount, 0)
    # Stored rows whose listing × mall pair is gone (the seller has no store left in the mall).
    cursor.execute(
        f"""
        DELETE FROM {_TABLE} WHERE (listing_id, mall_id) IN (
            SELECT stored_listing_id, stored_mall_id FROM {_NEW} WHERE listing_id IS NULL
        )
        """  # noqa: S608
    )
    cursor.execute(f"DROP TABLE {_NEW}")
    return written


@dataclass(frozen=True)
class _Scope:
    sql: str  # over l (listing) and s (the seller × mall summary)
    params: list
    stores: Q | None  # the stores whose state must be fresh
    result_sql: str  # the same scope over retailers_eligibilityresult, for the orphan DELETE
    result_params: list
    widens: bool = False
    bulk: bool = False
    inner_sql: str = "1 = 1"  # the same scope over st (stock) and s (store); the same params
    one_mall: bool = False  # sql and inner_sql pick one mall: the stock groups per listing alone


def _one_mall_scope(mall_id: int) -> _Scope:
    return _Scope(
        "s.mall_id = %s",
        [mall_id],
        Q(mall_id=mall_id),
        "mall_id = %s",
        [mall_id],
        bulk=True,
        inner_sql="s.mall_id = %s",
        one_mall=True,
    )


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    ids = sorted(set(ids))
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _scopes(
    *, listing_ids: Iterable[int] | None, store_ids: Iterable[int] | None, mall_ids: Iterable[int] | None
) -> list[_Scope]:
    from retailers.models import Listing

    if listing_ids is None and store_ids is None and mall_ids is None:
        return [_Scope("1 = 1", [], None, "1 = 1", [], bulk=True, inner_sql="1 = 1")]
    scopes = []
    for chunk in _chunks(listing_ids or []):
        sellers = set(Listing.objects.filter(pk__in=chunk).values_list("seller_id", flat=True))
        scopes.append(
            _Scope(
                f"l.id IN ({_placeholders(chunk)})",
                chunk,
                Q(seller_id__in=sellers),
                f"listing_id IN ({_placeholders(chunk)})",
                chunk,
                widens=True,
                inner_sql=f"st.listing_id IN ({_placeholders(chunk)})",
            )
        )
    for chunk in _chunks(store_ids or []):
        pairs = set(Store.objects.filter(pk__in=chunk).values_list("seller_id", "mall_id"))
        for seller_id, mall_id in sorted(pairs):
            scopes.append(
                _Scope(
                    "l.seller_id = %s AND s.mall_id = %s",
                    [seller_id, mall_id],
                    Q(seller_id=seller_id, mall_id=mall_id),
                    "mall_id = %s AND listing_id IN (SELECT id FROM retailers_listing WHERE seller_id = %s)",
                    [mall_id, seller_id],
                    inner_sql="s.seller_id = %s AND s.mall_id = %s",
                )
            )
    for chunk in _chunks(mall_ids or []):
        scopes.append(
            _Scope(
                f"s.mall_id IN ({_placeholders(chunk)})",
                chunk,
                Q(mall_id__in=chunk),
                f"mall_id IN ({_placeholders(chunk)})",
                chunk,
                bulk=True,
                inner_sql=f"s.mall_id IN ({_placeholders(chunk)})",
            )
        )
    return scopes


# pg_advisory_xact_lock key ("MRELIG"): one recompute at a time on PostgreSQL, whoever runs it
# (the request sweeper, the clock sweeper, the nightly run). Two at once both insert a new store's
# EligibilityStoreState row, and one fails on its primary key. Held to the commit; a session that
# holds it already takes it again at once.
RECOMPUTE_LOCK = 0x4D52_454C_4947


def one_recompute_at_a_time() -> None:
    """Waits for the recompute lock, inside the caller's transaction (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECOMPUTE_LOCK])


@transaction.atomic
def eligibility_recompute(
    *,
    listing_ids: Iterable[int] | None = None,
    store_ids: Iterable[int] | None = None,
    mall_ids: Iterable[int] | None = None,
    now: dt.datetime | None = None,
    driver_markets: Iterable[int] | None = None,
) -> int:
    """Recomputes eligibility for the listings, the stores' sellers' listings in their malls, and
    the malls given (everything when all three are None). `driver_markets` overrides the market
    ids with driver supply (default: asked from the drivers app).

    Side effects: EligibilityStoreState rows of the stores involved; EligibilityResult rows
    inserted, changed (with `computed_at` = now) or deleted. Returns how many result rows were
    inserted or changed.
    """
    one_recompute_at_a_time()
    now = now or timezone.now()
    supplied = sorted(set(driver_markets if driver_markets is not None else markets_with_driver_supply(now=now)))
    limits = ProgramLimits.current().facts()
    written = 0
    scopes = _scopes(listing_ids=listing_ids, store_ids=store_ids, mall_ids=mall_ids)
    widen: set[int] = set()
    # Helper connections (eligibility_parallel) see this transaction's snapshot and the summary
    # tables they copy, none of its other writes: so only for the first scope of a recompute that
    # is its own transaction (an enclosing one may have changed stock, an earlier scope results).
    helpers_allowed = (
        connection.vendor == "postgresql"
        and settings.ELIGIBILITY_RECOMPUTE_CONNECTIONS > 1
        and len(connection.atomic_blocks) == 1
    )
    with connection.cursor() as cursor:
        while scopes:
            scope = scopes.pop(0)
            changed = store_states_refresh(stores=scope.stores, now=now)
            if scope.widens:
                # A store's own state moved (the clock, an order filling its hour): its other
                # listings are stale too, so recompute the whole store afterwards.
                widen |= changed
            summary = tables = None
            if scope.bulk and connection.vendor == "postgresql":
                tables = _summary_tables(supplied=supplied)
                summary = _seller_malls_create(cursor, tables=tables)
            compute_for = functools.partial(_compute_sql, limits=limits, supplied=supplied, seller_malls=summary)
            at = connection.ops.adapt_datetimefield_value(now)
            if scope.bulk:
                helpers = None
                if helpers_allowed and tables is not None:
                    helpers = Helpers(settings.ELIGIBILITY_RECOMPUTE_CONNECTIONS - 1, tables)
                written += _write_bulk(cursor, compute_for=compute_for, at=at, scope=scope, helpers=helpers)
            else:
                compute, params = compute_for(scope=scope)
                written += _write_small(cursor, compute=compute, params=params, at=at, scope=scope)
            if summary is not None:
                _seller_malls_drop(cursor)
            helpers_allowed = False
            if not scopes and widen:
                scopes = _scopes(listing_ids=None, store_ids=widen, mall_ids=None)
                widen = set()
    return written


@transaction.atomic
def eligibility_sweep_run(*, now: dt.datetime) -> int:
    """What the beat sweeper does each minute: refreshes every store's clock-driven state and
    recomputes the stores whose state changed (opening, closing, cutoff, hourly capacity, a new
    local day). Returns how many result rows changed."""
    one_recompute_at_a_time()
    changed = store_states_refresh(now=now)
    supplied = markets_with_driver_supply(now=now)
    drifted = malls_with_driver_supply_drift(supplied=supplied)
    written = 0
    if changed or drifted:
        written = eligibility_recompute(
            store_ids=sorted(changed), mall_ids=sorted(drifted), now=now, driver_markets=supplied
        )
    return written


def malls_with_driver_supply_drift(*, supplied: set[int]) -> set[int]:
    """Malls whose results disagree with the market's driver supply now: a safety net for supply
    changes that no hook reported (a document expiring, a driver timing out)."""
    from retailers.models import EligibilityResult, Mall

    bit = rules.BIT["no_driver_supply"]
    drifted = set()
    for mall in Mall.objects.only("pk", "market_id"):
        expected = 0 if mall.market_id in supplied else bit
        rows = EligibilityResult.objects.filter(mall=mall).annotate(supply_bit=F("reason_bits").bitand(bit))
        if rows.exclude(supply_bit=expected).exists():
            drifted.add(mall.pk)
    return drifted
