"""A measurement, not a product benchmark: how fast the first eligibility run could write if the
results table were partitioned by mall and each mall's table built on its own connection (issue
5, point 9, first_ratio; see the stop-15 note on the issue).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mallrun_bench5 .venv/bin/python bench/eligibility_partitions.py

Needs the dataset bench/eligibility.py builds (run that first) and its store states. For each
layout it builds, on two connections at once, one standalone table per mall like the results
table: the mall's computation (retailers.eligibility_sql, as the first run computes it) inserted
in listing order, then that layout's indexes, then a commit. It alternates with the bench's floor
(the same SELECT, in a long-lived connection as bench/eligibility.py measures it) and prints
each build over the floor, then the medians; its last line:
RESULT identity=<median build/floor> packed=<…> packed_two_indexes=<…> (the layouts in order).
Nothing is attached: the tables are dropped at the end. The run's own overhead (store states,
summary tables, attaching partitions) is not in it.
"""

import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mallrun_bench5")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.eligibility import FLOOR_SQL  # noqa: E402
from retailers.eligibility_sql import (  # noqa: E402
    _BULK_SETTINGS,
    _SELLER_MALLS,
    _compute_sql,
    _one_mall_scope,
    _summary_tables,
    markets_with_driver_supply,
)
from retailers.models import Mall, ProgramLimits  # noqa: E402

CONNECTIONS, ROUNDS = 2, int(os.environ.get("BENCH_ROUNDS", "3"))
COLUMNS = "id, listing_id, mall_id, eligible, reason_bits, hint, eligible_until, computed_at"
# Each layout: how a row's id is made, and the indexes each mall's table gets (RESULT gives them
# as identity, packed and packed_two_indexes, in this order).
LAYOUTS = {
    "identity ids, pk (id, mall) + unique (listing, mall) + feed": (
        "nextval('bench_partition_ids')",
        ["PRIMARY KEY (id, mall_id)", "UNIQUE (listing_id, mall_id)"],
    ),
    "packed ids (mall << 32 | listing), same three indexes": (
        "(c.mall_id::bigint << 32) + c.listing_id",
        ["PRIMARY KEY (id, mall_id)", "UNIQUE (listing_id, mall_id)"],
    ),
    "packed ids, pk (id) + feed only": ("(c.mall_id::bigint << 32) + c.listing_id", ["PRIMARY KEY (id)"]),
}


def _table(mall_id: int) -> str:
    return f"bench_partition_{mall_id}"


def _build(cursor, *, mall_id: int, id_sql: str, constraints: list[str], compute_args: dict) -> None:
    compute, params = _compute_sql(scope=_one_mall_scope(mall_id), **compute_args)
    table = _table(mall_id)
    for setting, value in _BULK_SETTINGS.items():
        cursor.execute(f"SET LOCAL {setting} = {value}")
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(f"CREATE TABLE {table} (LIKE retailers_eligibilityresult INCLUDING DEFAULTS)")
    cursor.execute(
        f"INSERT INTO {table} ({COLUMNS}) SELECT {id_sql}, c.listing_id, c.mall_id, c.eligible, c.reason_bits,"
        f" c.hint, c.eligible_until, now() FROM ({compute}) c ORDER BY c.listing_id",
        params,
    )
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for constraint in constraints:
        cursor.execute(f"ALTER TABLE {table} ADD {constraint}")
    cursor.execute(f"CREATE INDEX ON {table} (mall_id, computed_at, id)")


def _worker(*, mall_ids: list[int], layout: tuple[str, list[str]], compute_args: dict, errors: list) -> None:
    try:
        with psycopg.connect(**connection.get_connection_params()) as helper, helper.cursor() as cursor:
            # The computation reads the bulk run's two small temporary tables: each connection
            # makes its own.
            for name, select, params, indexes in _summary_tables(supplied=compute_args["supplied"]):
                cursor.execute(f"CREATE TEMPORARY TABLE {name} AS {select}", params)
                for index in indexes:
                    cursor.execute(index)
                cursor.execute(f"ANALYZE {name}")
            helper.commit()
            for mall_id in mall_ids:
                _build(cursor, mall_id=mall_id, id_sql=layout[0], constraints=layout[1], compute_args=compute_args)
                helper.commit()
    except Exception as error:  # noqa: BLE001 - reported by the main thread
        errors.append(error)


def main() -> None:
    limits = ProgramLimits.current().facts()
    supplied = sorted(markets_with_driver_supply(now=timezone.now()))
    compute_args = {"limits": limits, "supplied": supplied, "seller_malls": _SELLER_MALLS}
    mall_ids = sorted(Mall.objects.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS bench_partition_ids")
        cursor.execute(FLOOR_SQL)  # warm, as bench/eligibility.py's first floor run is
        cursor.fetchone()
    ratios: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    try:
        for _ in range(ROUNDS):
            for name, layout in LAYOUTS.items():
                with connection.cursor() as cursor:
                    started = time.perf_counter()
                    cursor.execute(FLOOR_SQL)
                    cursor.fetchone()
                    floor = time.perf_counter() - started
                errors: list[Exception] = []
                threads = [
                    threading.Thread(
                        target=_worker,
                        kwargs={
                            "mall_ids": mall_ids[n::CONNECTIONS],
                            "layout": layout,
                            "compute_args": compute_args,
                            "errors": errors,
                        },
                    )
                    for n in range(CONNECTIONS)
                ]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                build = time.perf_counter() - started
                if errors:
                    raise errors[0]
                ratios[name].append(build / floor)
                print(f"{name}: floor {floor * 1000:.0f} ms, build {build * 1000:.0f} ms, {build / floor:.2f} × floor")
    finally:
        with connection.cursor() as cursor:
            for mall_id in mall_ids:
                cursor.execute(f"DROP TABLE IF EXISTS {_table(mall_id)}")
            cursor.execute("DROP SEQUENCE IF EXISTS bench_partition_ids")
    medians = [statistics.median(values) for values in ratios.values()]
    for name, median in zip(ratios, medians, strict=True):
        print(f"median {median:.2f} × floor: {name}")
    identity, packed, packed_two = medians
    print(f"RESULT identity={identity:.2f} packed={packed:.2f} packed_two_indexes={packed_two:.2f}")


if __name__ == "__main__":
    main()
