"""Eligibility recompute benchmark on PostgreSQL (issue 5, point 9).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mallrun_bench_elig .venv/bin/python bench/eligibility.py

Builds 200 stores in 4 malls, 40 sellers with 5,000 listings each, every store stocking its
seller's listings (1,000,000 stock rows), then measures in one run:
- the floor: one SELECT summing available stock per listing and mall (stock joined to stores);
- the first full computation (empty results);
- the steady-state full recompute after 1 % of stock rows changed (what the nightly run does);
- the incremental recompute after one stock change;
- a full walk of one mall's eligibility feed (200,000 rows; informational);
- the peak memory of this process.
Its last line: RESULT ratio=<steady/floor> first_ratio=<first/floor> incremental_ms=<n> peak_mb=<n>
(wall time; ratio is the median of three floor-then-steady pairs, first_ratio the median of three
floor-then-first pairs, the results and store states emptied before each first run). The line
before it gives the same ratios in the machine's CPU time (informational), and one line before
the write floor: what inserting the first run's rows, already computed, and building the results
table's indexes takes alone on one connection.
The database is emptied and rebuilt on every run (--reuse keeps an already built dataset and
clears only the results): never point it at real data.
"""

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mallrun_bench_elig")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import override_settings  # noqa: E402

from bench.machine import busy_cpu_seconds  # noqa: E402
from retailers.eligibility_sql import eligibility_recompute  # noqa: E402
from retailers.selectors import FEED_PAGE_MAX, eligibility_feed_page  # noqa: E402

MALLS, SELLERS, LISTINGS_PER_SELLER, STORES = 4, 40, 5000, 200
FIRST_ROUNDS = 3
STORES_PER_SELLER = STORES // SELLERS

FLOOR_SQL = """
    SELECT COUNT(*), SUM(q.available) FROM (
        SELECT st.listing_id, s.mall_id, SUM(st.on_hand - st.reserved) AS available
        FROM retailers_stock st JOIN retailers_store s ON s.id = st.store_id
        GROUP BY st.listing_id, s.mall_id
    ) q
"""


def ensure_database() -> None:
    import psycopg

    settings = connection.settings_dict
    name = settings["NAME"]
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    dsn = f"host={host} port={port} user={settings['USER']} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def build() -> None:
    call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        c.execute(
            "TRUNCATE retailers_eligibilityresult, retailers_eligibilitystorestate, retailers_stock, "
            "retailers_storehours, retailers_store, retailers_listing, retailers_seller, retailers_mall, "
            "retailers_market, retailers_programlimits RESTART IDENTITY CASCADE"
        )
        c.execute(
            "INSERT INTO retailers_market (name, slug, time_zone, auto_go_live) "
            "VALUES ('Bench', 'bench', 'America/Los_Angeles', false)"
        )
        c.execute(
            """
            INSERT INTO retailers_mall (market_id, name, slug, address, latitude, longitude, time_zone,
                delivery_radius_miles, parking_instructions, entrance_instructions)
            SELECT 1, 'Mall ' || g, 'mall-' || g, 'Somewhere', 36.1, -115.1,
                (ARRAY['America/Los_Angeles','America/Phoenix','America/New_York','America/Chicago'])[g], 10, '', ''
            FROM generate_series(1, %s) g
            """,
            [MALLS],
        )
        c.execute(
            "INSERT INTO retailers_seller (marketplace_seller_id, name) "
            "SELECT 'SELLER' || g, 'Seller ' || g FROM generate_series(1, %s) g",
            [SELLERS],
        )
        # Seller k has stores 5(k-1)+1 … 5k spread over the malls; all live and open round the clock.
        c.execute(
            """
            INSERT INTO retailers_store (seller_id, mall_id, name, unit, pickup_instructions, same_day_cutoff,
                prep_sla_minutes, hourly_capacity, status, paused_reason, updated_at)
            SELECT (g - 1) / %s + 1, (g - 1) %% %s + 1, 'Store ' || g, 'U-' || g, '', '23:59:59', 30, 50, 'live', '',
                now()
            FROM generate_series(1, %s) g
            """,
            [STORES_PER_SELLER, MALLS, STORES],
        )
        c.execute(
            "INSERT INTO retailers_storehours (store_id, weekday, opens_at, closes_at) "
            "SELECT s, d, '00:00', '00:00' FROM generate_series(1, %s) s, generate_series(0, 6) d",
            [STORES],
        )
        c.execute(
            """
            INSERT INTO retailers_listing (seller_id, seller_sku, marketplace_item_id, title, category,
                weight_grams, size_class, hazmat)
            SELECT (g - 1) / %s + 1, 'SKU-' || g, '', 'Item ' || g,
                (ARRAY['apparel','shoes','toys','home'])[g %% 4 + 1], 100 + g %% 3000,
                (ARRAY['small','medium','large'])[g %% 3 + 1], g %% 97 = 0
            FROM generate_series(1, %s) g
            """,
            [LISTINGS_PER_SELLER, SELLERS * LISTINGS_PER_SELLER],
        )
        c.execute(
            """
            INSERT INTO retailers_stock (store_id, listing_id, on_hand, reserved, updated_at)
            SELECT s.id, l.id, (l.id + s.id) % 4, 0, now()
            FROM retailers_store s JOIN retailers_listing l ON l.seller_id = s.seller_id
            """
        )
        c.execute("ANALYZE")


def timed(fn, *, cpu: list | None = None) -> float:
    """Wall seconds of fn(); its machine CPU seconds (bench.machine) appended to `cpu`."""
    busy = busy_cpu_seconds()
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.append(busy_cpu_seconds() - busy)
    return elapsed


def floor() -> None:
    with connection.cursor() as c:
        c.execute(FLOOR_SQL)
        c.fetchone()


def write_floor() -> float:
    """Seconds to insert the stored results (the first run's rows, already computed) into an
    empty table shaped like a partition of the results table and build the same two indexes as the
    first run does, on one connection, in a transaction rolled back afterwards: the least a first
    run on one connection writes."""
    with transaction.atomic(), connection.cursor() as c:
        c.execute("CREATE TABLE bench_write_floor (LIKE retailers_eligibilityresult INCLUDING DEFAULTS)")
        c.execute("SET LOCAL maintenance_work_mem = '256MB'")
        started = time.perf_counter()
        c.execute("INSERT INTO bench_write_floor SELECT * FROM retailers_eligibilityresult")
        c.execute("ALTER TABLE bench_write_floor ADD PRIMARY KEY (listing_id, mall_id)")
        c.execute("CREATE INDEX ON bench_write_floor (mall_id, computed_at, id)")
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def feed_walk() -> tuple[int, int, float]:
    """(rows, pages, seconds) of a walk of the first mall's eligibility feed from the start, as
    the marketplace does it: each page read and written out as the API's JSON."""
    from retailers.models import Mall

    slug = Mall.objects.order_by("pk").values_list("slug", flat=True)[0]
    rows = pages = 0
    cursor = None
    started = time.perf_counter()
    while True:
        page = eligibility_feed_page(mall_slug=slug, changed_since=None, cursor=cursor)
        json.dumps({"items": page.items, "next_cursor": page.next_cursor})
        rows, pages, cursor = rows + len(page.items), pages + 1, page.next_cursor
        if cursor is None:
            return rows, pages, time.perf_counter() - started


def change_one_percent(k: int) -> None:
    with connection.cursor() as c:
        c.execute("UPDATE retailers_stock SET on_hand = (on_hand + 1) %% 4 WHERE id %% 100 = %s", [k])


def _ms(runs: list[float]) -> str:
    return ", ".join(f"{run * 1000:.0f}" for run in runs)


def reusable() -> bool:
    """--reuse keeps an already built dataset (only the results are cleared): for iterating."""
    if "--reuse" not in sys.argv:
        return False
    call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        c.execute("SELECT COUNT(*) FROM retailers_stock")
        if c.fetchone()[0] != STORES * LISTINGS_PER_SELLER:
            return False
        c.execute("TRUNCATE retailers_eligibilityresult, retailers_eligibilitystorestate")
        c.execute("VACUUM ANALYZE")
    return True


def main() -> None:
    ensure_database()
    started = time.perf_counter()
    if not reusable():
        build()
    with connection.cursor() as c:
        c.execute("SELECT COUNT(*) FROM retailers_stock")
        (stock_rows,) = c.fetchone()
    print(f"built {stock_rows:,} stock rows in {time.perf_counter() - started:.1f} s")
    markets = [1]

    cpu_floor, cpu_first, cpu_steady = [], [], []
    floors = [timed(floor, cpu=cpu_floor) for _ in range(3)]
    print(f"floor: {statistics.median(floors) * 1000:.0f} ms (runs {_ms(floors)})")

    # Floor and first run alternate too: each round empties the results (and the store states)
    # and computes them all again, as the very first run does.
    firsts, first_ratios = [], []
    for k in range(FIRST_ROUNDS):
        if k:
            with connection.cursor() as c:
                c.execute("TRUNCATE retailers_eligibilityresult, retailers_eligibilitystorestate")
            floors.append(timed(floor, cpu=cpu_floor))
        firsts.append(timed(lambda: eligibility_recompute(driver_markets=markets), cpu=cpu_first))
        first_ratios.append(firsts[-1] / floors[-1])
    with connection.cursor() as c:
        c.execute("SELECT COUNT(*), SUM(CASE WHEN eligible THEN 1 ELSE 0 END) FROM retailers_eligibilityresult")
        rows, eligible = c.fetchone()
        c.execute("ANALYZE retailers_eligibilityresult")
    print(
        f"first full: {statistics.median(firsts) * 1000:.0f} ms (runs {_ms(firsts)}), ratio "
        f"{statistics.median(first_ratios):.2f}; {rows:,} results, {eligible:,} eligible"
    )

    # Floor and steady runs alternate; each round also runs the steady recompute on one connection
    # (no helpers, ELIGIBILITY_RECOMPUTE_CONNECTIONS=1), for comparison (informational).
    steady, single, ratios, single_ratios = [], [], [], []
    for k in range(3):
        floor_k = timed(floor, cpu=cpu_floor)
        change_one_percent(2 * k)
        steady.append(timed(lambda: eligibility_recompute(driver_markets=markets), cpu=cpu_steady))
        change_one_percent(2 * k + 1)
        with override_settings(ELIGIBILITY_RECOMPUTE_CONNECTIONS=1):
            single.append(timed(lambda: eligibility_recompute(driver_markets=markets)))
        floors.append(floor_k)
        ratios.append(steady[-1] / floor_k)
        single_ratios.append(single[-1] / floor_k)
    floor_s = statistics.median(floors)
    print(f"floor, all runs: {floor_s * 1000:.0f} ms (runs {_ms(floors)})")
    connections = settings.ELIGIBILITY_RECOMPUTE_CONNECTIONS
    print(
        f"steady full after 1 % changed ({connections} connections): {statistics.median(steady) * 1000:.0f} ms "
        f"(runs {_ms(steady)}), ratio {statistics.median(ratios):.2f}"
    )
    print(
        f"steady full on one connection: {statistics.median(single) * 1000:.0f} ms (runs {_ms(single)}), "
        f"ratio {statistics.median(single_ratios):.2f} (informational)"
    )

    incremental = []
    for n in range(20):
        with connection.cursor() as c:
            c.execute(
                "UPDATE retailers_stock SET on_hand = (on_hand + 1) %% 4 WHERE id = %s RETURNING listing_id",
                [n * 49_999 + 1],
            )
            (listing_id,) = c.fetchone()
        incremental.append(
            timed(lambda lid=listing_id: eligibility_recompute(listing_ids=[lid], driver_markets=markets))
        )
    incremental_ms = statistics.median(incremental) * 1000
    print(f"incremental after one stock change: {incremental_ms:.1f} ms (median of 20)")

    walked, pages, walk_s = feed_walk()
    print(
        f"eligibility feed, a full walk of one mall: {walked:,} rows in {pages} pages of at most "
        f"{FEED_PAGE_MAX:,}, {walk_s:.1f} s (issue 5, point 8: under 10 s for 100,000 listings; informational)"
    )

    floor_cpu, first_cpu, steady_cpu = (statistics.median(cpu) for cpu in (cpu_floor, cpu_first, cpu_steady))
    print(
        f"cpu (machine, every core): floor {floor_cpu * 1000:.0f} ms, first {first_cpu * 1000:.0f} ms, "
        f"steady {steady_cpu * 1000:.0f} ms; ratio {steady_cpu / floor_cpu:.2f} first_ratio "
        f"{first_cpu / floor_cpu:.2f}; load {os.getloadavg()[0]:.1f} (informational; RESULT is wall time)"
    )
    written_s = write_floor()
    print(
        f"write floor: {written_s * 1000:.0f} ms = {written_s / floor_s:.2f} × floor (inserting {rows:,} computed "
        "rows and building the results table's two indexes on one connection; informational)"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"RESULT ratio={statistics.median(ratios):.2f} first_ratio={statistics.median(first_ratios):.2f} "
        f"incremental_ms={incremental_ms:.1f} peak_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
