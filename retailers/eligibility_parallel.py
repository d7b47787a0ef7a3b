"""Full eligibility recomputes on more than one PostgreSQL connection: helper connections take
some of the malls while the recompute's own connection takes the others (`share_work`), so a run
takes the database's cores instead of one (bench/eligibility.py: about half the time on two).
PostgreSQL runs no parallel workers for a statement that writes, and each mall's statement does.

Two uses:
- `compare_in_parallel` (the nightly run, a mall's sweep): each mall's computation is compared
  with its stored rows (`eligibility_sql._write_changes`). Helpers only read: they send their
  malls' differing rows back as binary COPY data, which the recompute's connection copies into
  its temporary table, so every write stays in its one transaction; helpers roll back.
- the first run (`eligibility_partitions.build_and_swap`): each helper builds its malls'
  partitions as tables of its own and commits them; the recompute's transaction then swaps them
  in (ADR 0010).

Helpers see exactly what the recompute's connection sees:
- the same snapshot (`pg_export_snapshot`, imported by each helper's REPEATABLE READ
  transaction), so every mall is computed from the same stock, listings and stored rows;
- the two small temporary tables the computation reads (the seller × mall summary and the
  candidate stores), copied over in binary: they come from the store states this transaction has
  just refreshed, which another connection could not see before the commit.
That is everything the computation reads, provided the transaction has written nothing else it
reads (stock, listings, stored results): `eligibility_sql` uses helpers only for the first scope
of a recompute that is its own transaction.

An error in one helper stops the others and fails the recompute; helpers are closed however the
run ends. A helper that cannot connect hands its malls back to the recompute's connection.
"""

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import psycopg
from django.db import connection
from psycopg import sql as psql

logger = logging.getLogger(__name__)

# (a SELECT, its parameters): one mall's comparison
Statement = tuple[str, list]
# (name, the SELECT that filled it, its parameters, the statements that index it)
SharedTable = tuple[str, str, list, list[str]]
Job = TypeVar("Job")


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
    `target`, `helpers` other connections sharing the work (share_work). Helpers send their
    rows back as binary COPY data and roll back."""
    raw: psycopg.Connection = cursor.connection  # psycopg's, under Django's cursor: for COPY

    def here(statement: Statement) -> None:
        sql, params = statement
        cursor.execute(f"INSERT INTO {target} {sql}", params)  # noqa: S608

    def there(helper: psycopg.Connection, statement: Statement) -> bytes:
        sql, params = statement
        return _copy_out(helper, f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params)

    def take_in(rows: bytes) -> None:
        with raw.cursor() as copy_cursor, copy_cursor.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(rows)

    share_work(
        cursor,
        jobs=statements,
        here=here,
        there=there,
        take_in=take_in,
        shared_tables=shared_tables,
        settings=settings,
        helpers=helpers,
        commit=False,
        done="compared",
    )


def share_work(
    cursor,
    *,
    jobs: Sequence[Job],
    here: Callable[[Job], object],
    there: Callable[[psycopg.Connection, Job], object],
    take_in: Callable[[object], None],
    shared_tables: Sequence[SharedTable],
    settings: Sequence[str],
    helpers: int,
    commit: bool,
    done: str,
) -> None:
    """Runs every job, one per mall: job i on connection i mod (helpers + 1), this one being
    connection 0 (`here(job)`); a helper runs `there(its connection, job)` in its transaction and
    this thread passes what that returned to `take_in`. A helper that cannot connect (the
    server's connection limit, say) hands its jobs back to this connection.

    `commit`: helpers commit their transaction after their last job, and only then send what
    their jobs returned (the helpers' own tables, say); otherwise they send each job's result as
    it comes and roll back. `shared_tables`: the temporary tables the jobs read; helpers create
    theirs with no data from the same SELECT (so the same column types), copy the rows in and
    index them the same way. `settings`: SET LOCAL statements each helper runs first (the
    recompute's planner settings). `done`: the verb for the log line ("compared").
    """
    cursor.execute("SELECT pg_export_snapshot()")
    (snapshot,) = cursor.fetchone()
    raw: psycopg.Connection = cursor.connection
    run = _Run(here=here, take_in=take_in, done=done)
    copies = [
        (name, select, params, indexes, _copy_out(raw, f"COPY {name} TO STDOUT (FORMAT BINARY)"))
        for name, select, params, indexes in shared_tables
    ]
    threads = [
        threading.Thread(
            target=_helper,
            kwargs={
                "snapshot": snapshot,
                "copies": copies,
                "settings": settings,
                "jobs": jobs[number :: helpers + 1],
                "there": there,
                "commit": commit,
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
        for job in jobs[:: helpers + 1]:
            # Between its own malls, this connection takes in what helpers have sent.
            run.drain()
            if run.failures:
                break
            here(job)
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
    logger.info("eligibility: %d of %d malls %s by %d helper connection(s)", run.helped, len(jobs), done, helpers)


class _Unconnected(NamedTuple):
    """A helper's jobs, handed back because it could not connect."""

    jobs: Sequence
    error: Exception


class _Run:
    """The recompute connection's side of one share_work."""

    def __init__(self, *, here: Callable, take_in: Callable, done: str) -> None:
        self.here = here
        self.take_in = take_in
        self.done = done
        self.results: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.failures: list[BaseException] = []
        self.helped = 0

    def drain(self) -> None:
        """Takes in what helpers have sent so far; a helper's error stops the others."""
        while not self.stop.is_set():
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Unconnected):
                logger.warning(
                    "eligibility: a helper connection failed (%s); its %d mall(s) are %s here",
                    item.error,
                    len(item.jobs),
                    self.done,
                )
                for job in item.jobs:
                    self.here(job)
            elif isinstance(item, BaseException):
                self.failures.append(item)
                self.stop.set()
            else:
                self.take_in(item)
                self.helped += 1


def _copy_out(raw: psycopg.Connection, statement: str, params: list | None = None) -> bytes:
    with raw.cursor() as cursor, cursor.copy(statement, params) as copy:
        return b"".join(bytes(block) for block in copy)


def _helper(
    *,
    snapshot: str,
    copies: list,
    settings: Sequence[str],
    jobs: Sequence,
    there: Callable,
    commit: bool,
    results: queue.Queue,
    stop: threading.Event,
) -> None:
    try:
        helper = psycopg.connect(**connection.get_connection_params())
    except psycopg.OperationalError as error:
        results.put(_Unconnected(jobs, error))
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
            done = []
            for job in jobs:
                if stop.is_set():
                    break
                item = there(helper, job)
                if commit:
                    done.append(item)
                else:
                    results.put(item)
            if commit and not stop.is_set():
                helper.commit()
                for item in done:
                    results.put(item)
            else:
                helper.rollback()
    except BaseException as error:  # noqa: BLE001 - handed to the recompute's thread, which raises it
        results.put(error)
