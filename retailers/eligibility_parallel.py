"""Whole-mall comparisons of the full recompute on more than one PostgreSQL connection.

A full recompute (the nightly run, a mall's sweep) compares each mall's computation with its
stored rows in one statement per mall (`eligibility_sql._write_changes`). Those statements only
read, and each keeps one core busy: PostgreSQL runs no parallel workers for a statement that
writes, and each comparison writes its rows into a temporary table. So helper connections compare
some of the malls while the recompute's own connection compares the others, and the run takes
the database's cores instead of one (bench/eligibility.py: about half the time on two cores).

Helpers see exactly what the recompute's connection sees:
- the same snapshot (`pg_export_snapshot`, imported by each helper's REPEATABLE READ
  transaction), so every mall is compared with the same stock, listings and stored rows;
- the two small temporary tables the computation reads (the seller × mall summary and the
  candidate stores), copied over in binary: they come from the store states this transaction has
  just refreshed, which another connection could not see before the commit.
That is everything the comparisons read, provided the transaction has written nothing else they
read (stock, listings, stored results): `eligibility_sql` uses helpers only for the first scope
of a recompute that is its own transaction.

Each helper sends its malls' differing rows back as binary COPY data, which the recompute's
connection copies into its temporary table: every write stays in the one transaction. Helpers
are rolled back and closed however the run ends; an error in one fails the recompute.
"""

import logging
import queue
import threading
from collections.abc import Sequence
from typing import NamedTuple

import psycopg
from django.db import connection
from psycopg import sql as psql

logger = logging.getLogger(__name__)

# (a SELECT, its parameters): one mall's comparison
Statement = tuple[str, list]
# (name, the SELECT that filled it, its parameters, the statements that index it)
SharedTable = tuple[str, str, list, list[str]]


def compare_in_parallel(
    cursor,
    *,
    target: str,
    statements: Sequence[Statement],
    shared_tables: Sequence[SharedTable],
    settings: Sequence[str],
    helpers: int,
) -> None:
    """Adds the rows of every SELECT in `statements` to this connection's temporary table
    `target`, `helpers` other connections sharing the work: statement i runs on connection
    i mod (helpers + 1), this one being connection 0. A helper that cannot connect (the
    server's connection limit, say) hands its statements back to this connection.

    `shared_tables`: the temporary tables the statements read; helpers create theirs with no data
    from the same SELECT (so the same column types), copy the rows in and index them the same way.
    `settings`: SET LOCAL statements each helper runs first (the recompute's planner settings).
    """
    cursor.execute("SELECT pg_export_snapshot()")
    (snapshot,) = cursor.fetchone()
    run = _Run(cursor, target)
    copies = [
        (name, select, params, indexes, _copy_out(run.raw, f"COPY {name} TO STDOUT (FORMAT BINARY)"))
        for name, select, params, indexes in shared_tables
    ]
    threads = [
        threading.Thread(
            target=_helper,
            kwargs={
                "snapshot": snapshot,
                "copies": copies,
                "settings": settings,
                "statements": statements[number :: helpers + 1],
                "results": run.results,
                "stop": run.stop,
            },
            name=f"eligibility-helper-{number}",
            daemon=True,
        )
        for number in range(1, helpers + 1)
    ]
    for thread in threads:
        thread.start()
    try:
        for statement in statements[:: helpers + 1]:
            # Between its own malls, this connection takes in what helpers have sent.
            run.drain()
            if run.failures:
                break
            run.compare_here(statement)
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.05)
                run.drain()
        run.drain()
    except BaseException:
        run.stop.set()  # helpers stop after the mall they hold; nothing more is taken in
        for thread in threads:
            thread.join()
        raise
    if run.failures:
        raise run.failures[0]
    logger.info("eligibility: %d of %d malls compared by %d helper connection(s)", run.helped, len(statements), helpers)


class _Unconnected(NamedTuple):
    """A helper's statements, handed back because it could not connect."""

    statements: Sequence[Statement]
    error: Exception


class _Run:
    """The recompute connection's side of one compare_in_parallel."""

    def __init__(self, cursor, target: str) -> None:
        self.cursor = cursor
        self.raw: psycopg.Connection = cursor.connection  # psycopg's, under Django's cursor: for COPY
        self.target = target
        self.results: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.failures: list[BaseException] = []
        self.helped = 0

    def compare_here(self, statement: Statement) -> None:
        sql, params = statement
        self.cursor.execute(f"INSERT INTO {self.target} {sql}", params)  # noqa: S608

    def drain(self) -> None:
        """Takes in what helpers have sent so far; a helper's error stops the others."""
        while not self.stop.is_set():
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Unconnected):
                logger.warning(
                    "eligibility: a helper connection failed (%s); its %d mall(s) are compared here",
                    item.error,
                    len(item.statements),
                )
                for statement in item.statements:
                    self.compare_here(statement)
            elif isinstance(item, BaseException):
                self.failures.append(item)
                self.stop.set()
            else:
                with self.raw.cursor() as cursor, cursor.copy(f"COPY {self.target} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(item)
                self.helped += 1


def _copy_out(raw: psycopg.Connection, statement: str, params: list | None = None) -> bytes:
    with raw.cursor() as cursor, cursor.copy(statement, params) as copy:
        return b"".join(bytes(block) for block in copy)


def _helper(
    *,
    snapshot: str,
    copies: list,
    settings: Sequence[str],
    statements: Sequence[Statement],
    results: queue.Queue,
    stop: threading.Event,
) -> None:
    try:
        helper = psycopg.connect(**connection.get_connection_params())
    except psycopg.OperationalError as error:
        results.put(_Unconnected(statements, error))
        return
    try:
        with helper:
            helper.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with helper.cursor() as cursor:
                cursor.execute(psql.SQL("SET TRANSACTION SNAPSHOT {}").format(psql.Literal(snapshot)))
                for name, select, params, indexes, data in copies:
                    cursor.execute(f"CREATE TEMPORARY TABLE {name} AS {select} WITH NO DATA", params)
                    with cursor.copy(f"COPY {name} FROM STDIN (FORMAT BINARY)") as copy:
                        copy.write(data)
                    for index in indexes:
                        cursor.execute(index)
                    cursor.execute(f"ANALYZE {name}")
                for setting in settings:
                    cursor.execute(setting)
            for sql, params in statements:
                if stop.is_set():
                    break
                results.put(_copy_out(helper, f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params))
            helper.rollback()
    except BaseException as error:  # noqa: BLE001 - handed to the recompute's thread, which raises it
        results.put(error)
