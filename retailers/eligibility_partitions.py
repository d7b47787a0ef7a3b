"""How a mall's first full computation fills its partition of the results table (PostgreSQL).

On PostgreSQL the results table is partitioned by mall (migration 0013): one partition per mall,
and a DEFAULT one for malls added since. When nothing is stored yet for a mall, the recompute does
not insert its rows through the partitioned table. It builds the mall's partition as a table of
its own instead, then swaps it in:
1. build, mall by mall: CREATE TABLE … AS the computation, in listing order, with the results
   table's columns; its NOT NULL and CHECK constraints, and CHECK (mall_id = …); then its unique
   constraints and indexes, each built once from the written rows. Helper connections
   (eligibility_parallel.share_work) build some of the malls from the recompute's snapshot and
   commit their tables, while the recompute's own connection builds the others in its
   transaction. Two malls are then written and indexed at once, where one connection wrote and
   indexed them one after the other (bench/eligibility.py, first_ratio).
2. swap, in the recompute's transaction: the results table's exclusive lock (waiting at most
   settings.ELIGIBILITY_SWAP_LOCK_TIMEOUT_MS for readers), then for each mall DROP its empty
   partition, ATTACH the built table (its CHECK spares the validation scan; its indexes become
   the partition's) and give it the partition's name. Readers see the empty partitions until the
   commit, then every mall at once; a rollback leaves the empty partitions in place.

If the lock is not free in time, the built rows are copied into the results table instead (slower,
the same rows). A table a helper committed that the recompute never attached (it failed later) is
left under its build name; the next build drops it.
"""

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, transaction

from retailers.eligibility_parallel import SharedTable, share_work
from retailers.models import result_id_sql

logger = logging.getLogger(__name__)

PARENT = "retailers_eligibilityresult"
COLUMNS = "id, listing_id, mall_id, eligible, reason_bits, hint, eligible_until, computed_at"
# Short names, so that PostgreSQL's names for their indexes ("<table>_pkey") are never truncated.
_BUILD_PREFIX = "eligibility_build_"


def partition_name(mall_id: int) -> str:
    return f"eligibility_mall_{int(mall_id)}"


@dataclass(frozen=True)
class Layout:
    """The results table as the database has it now (so a column, constraint or index a later
    migration adds is built too), to build a table that ATTACH takes as a partition: the same
    columns and types, NOT NULL and CHECK constraints, and an index for each of the table's
    (a constraint's index must itself be a constraint for ATTACH to take it)."""

    columns: list[tuple[str, str]]  # (name, type), in the table's order
    constraints: list[str]  # ALTER TABLE clauses: NOT NULLs and CHECKs
    indexes: list[str]  # statements over "{table}"

    def select_list(self, expressions: dict[str, str]) -> str:
        """Each column, cast to its type, from the expression given for it (c.<name> if none)."""
        return ", ".join(
            f"CAST({expressions.get(name, f'c.{name}')} AS {type_}) AS {name}" for name, type_ in self.columns
        )


@dataclass(frozen=True)
class Build:
    """One mall's partition, built as a table of its own."""

    mall_id: int
    table: str
    compute: str  # the mall's computation (eligibility_sql._compute_sql)
    params: list
    at: object  # computed_at

    def run(self, cursor, *, layout: Layout) -> int:
        """Creates, fills and indexes the table on `cursor` (Django's or a helper's psycopg one);
        returns how many rows it wrote. CREATE TABLE … AS writes through a bulk-insert buffer,
        where INSERT … SELECT into a created table looks up its page for every row (a third less
        time writing on the bench); the NOT NULLs and CHECKs are then checked in one scan."""
        expressions = {"id": result_id_sql(listing="c.listing_id", mall="c.mall_id"), "computed_at": "%s"}
        select = f"SELECT {layout.select_list(expressions)} FROM ({self.compute}) c ORDER BY c.listing_id"  # noqa: S608
        cursor.execute(f"CREATE TABLE {self.table} AS {select}", [self.at, *self.params])
        written = max(cursor.rowcount, 0)
        mall_only = f"ADD CONSTRAINT eligibility_partition_mall CHECK (mall_id = {int(self.mall_id)})"
        cursor.execute(f"ALTER TABLE {self.table} {', '.join([*layout.constraints, mall_only])}")
        # Index builds sort in memory, on this connection alone: the other connections building
        # malls already take the cores a parallel build's workers would.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL max_parallel_maintenance_workers = 0")
        for statement in layout.indexes:
            cursor.execute(statement.replace("{table}", self.table))
        cursor.execute("SET LOCAL maintenance_work_mem TO DEFAULT")
        cursor.execute("SET LOCAL max_parallel_maintenance_workers TO DEFAULT")
        return written


def builds_for(malls: Sequence[tuple[int, str, list]], *, at: object) -> list[Build]:
    """A Build per (mall id, computation, its parameters), with this run's table names."""
    run = secrets.token_hex(4)  # names no other run's tables (a helper's committed leftover, say)
    return [
        Build(mall_id=mall_id, table=f"{_BUILD_PREFIX}{int(mall_id)}_{run}", compute=compute, params=params, at=at)
        for mall_id, compute, params in malls
    ]


def build_and_swap(
    cursor,
    *,
    builds: Sequence[Build],
    helpers: int,
    shared_tables: Sequence[SharedTable],
    planner_settings: Sequence[str],
) -> int:
    """Builds every mall's table (on this connection, and on `helpers` others when above 0) and
    swaps them in; returns how many rows were written. Nothing may be stored for these malls."""
    if not builds:
        return 0
    _drop_leftovers(cursor)
    layout = _layout(cursor)
    written = 0

    def take_in(rows: int) -> None:
        nonlocal written
        written += rows

    def here(build: Build) -> None:
        take_in(build.run(cursor, layout=layout))

    def there(helper, build: Build) -> int:
        with helper.cursor() as helper_cursor:
            return build.run(helper_cursor, layout=layout)

    if helpers and len(builds) > 1:
        share_work(
            cursor,
            jobs=builds,
            here=here,
            there=there,
            take_in=take_in,
            shared_tables=shared_tables,
            settings=planner_settings,
            helpers=min(helpers, len(builds) - 1),
            commit=True,
            done="built",
        )
    else:
        for build in builds:
            here(build)
    if _lock_results(cursor):
        for build in builds:
            partition = partition_name(build.mall_id)
            cursor.execute(f"DROP TABLE IF EXISTS {partition}")
            cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {build.table} FOR VALUES IN ({int(build.mall_id)})")
            cursor.execute(f"ALTER TABLE {build.table} RENAME TO {partition}")
            _rename_indexes(cursor, table=partition, old_prefix=build.table)
    else:
        logger.warning(
            "eligibility: readers kept the results table for %d ms; the built rows are copied in",
            settings.ELIGIBILITY_SWAP_LOCK_TIMEOUT_MS,
        )
        for build in builds:
            cursor.execute(f"INSERT INTO {PARENT} ({COLUMNS}) SELECT {COLUMNS} FROM {build.table}")  # noqa: S608
            cursor.execute(f"DROP TABLE {build.table}")
    return written


def _rename_indexes(cursor, *, table: str, old_prefix: str) -> None:
    """Names the table's indexes (and so their constraints) after it, as PostgreSQL names a
    partition's own: eligibility_build_5_1a2b3c4d_pkey becomes eligibility_mall_5_pkey."""
    cursor.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", [table])
    for (index,) in cursor.fetchall():
        if index.startswith(f"{old_prefix}_"):
            cursor.execute(f"ALTER INDEX {index} RENAME TO {table}_{index.removeprefix(f'{old_prefix}_')}")


def _drop_leftovers(cursor) -> None:
    """Drops the built tables an earlier run committed and never swapped in."""
    cursor.execute(
        r"SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind = 'r' AND NOT c.relispartition"
        r" AND c.relname LIKE %s",
        [_BUILD_PREFIX.replace("_", r"\_") + "%"],
    )
    for (table,) in cursor.fetchall():
        logger.info("eligibility: dropping %s, built by a run that did not finish", table)
        cursor.execute(f"DROP TABLE {table}")


def _layout(cursor) -> Layout:
    cursor.execute(
        """
        SELECT attname::text, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
        WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
        """,
        [PARENT],
    )
    columns, constraints = [], []
    for name, type_, not_null in cursor.fetchall():
        columns.append((name, type_))
        if not_null:
            constraints.append(f"ALTER {name} SET NOT NULL")
    cursor.execute(
        """
        SELECT conname::text, pg_get_constraintdef(oid), contype FROM pg_constraint
        WHERE conrelid = %s::regclass AND contype IN ('c', 'p', 'u')
        ORDER BY contype = 'p' DESC, conname
        """,
        [PARENT],
    )
    indexes = []
    for name, definition, kind in cursor.fetchall():
        if kind == "c":
            constraints.append(f"ADD CONSTRAINT {name} {definition}")
        else:
            indexes.append(f"ALTER TABLE {{table}} ADD {definition}")
    cursor.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
        WHERE i.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
        """,
        [PARENT],
    )
    for (definition,) in cursor.fetchall():
        # "CREATE [UNIQUE] INDEX name ON ONLY parent USING …": the same on the built table.
        unique = "UNIQUE " if definition.startswith("CREATE UNIQUE ") else ""
        indexes.append(f"CREATE {unique}INDEX ON {{table}}{definition[definition.index(' USING ') :]}")
    return Layout(columns=columns, constraints=constraints, indexes=indexes)


def _lock_results(cursor) -> bool:
    """Takes the results table's exclusive lock for this transaction, waiting at most
    ELIGIBILITY_SWAP_LOCK_TIMEOUT_MS for readers to finish; False (and nothing changed) if they
    did not."""
    try:
        with transaction.atomic():
            cursor.execute(f"SET LOCAL lock_timeout = {int(settings.ELIGIBILITY_SWAP_LOCK_TIMEOUT_MS)}")
            cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
    except OperationalError:
        return False
    finally:
        cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
    return True
