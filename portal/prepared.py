"""Server-side prepared statements for the hot paths of the marketplace API (the intake, its
replays and the feed's numbering). PostgreSQL only.

PostgreSQL parses and plans a prepared statement once per database session and keeps the plan,
and on these short statements planning costs more than running. A prepared statement is run with
EXECUTE in a simple-protocol message, so several of them can go in one round trip.

A session lasts as long as its connection object. Nothing here works through a pooler in
transaction mode (pgbouncer), which hands each transaction another session."""

import weakref
from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class Prepared:
    name: str
    # Parameter types, e.g. "text, bigint"; "" for none.
    types: str
    # The statement, with $1, $2… for its parameters.
    sql: str

    def execute(self, arguments: int = 0) -> str:
        """The EXECUTE of this statement with `arguments` client-side placeholders (%s)."""
        if not arguments:
            return f"EXECUTE {self.name}"
        return f"EXECUTE {self.name} ({', '.join(['%s'] * arguments)})"


_prepared: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()


def prepare(cursor, *statements: Prepared) -> None:
    """Prepares, in one message, those of `statements` this database session does not have yet.
    The message has no parameters, so psycopg sends it as it is (a % stays a %)."""
    raw = connection.connection
    done = _prepared.setdefault(raw, set())
    missing = [statement for statement in statements if statement.name not in done]
    if not missing:
        return
    cursor.execute("; ".join(f"PREPARE {s.name}{f' ({s.types})' if s.types else ''} AS {s.sql}" for s in missing))
    done.update(statement.name for statement in missing)


def numbered(sql: str, *, start: int = 1) -> str:
    """`sql` with its %s placeholders as $start, $start+1… (and %% as %), for a statement that
    Django's ORM compiled."""
    parts = sql.split("%s")
    text = parts[0] + "".join(f"${number}{part}" for number, part in enumerate(parts[1:], start=start))
    return text.replace("%%", "%")
