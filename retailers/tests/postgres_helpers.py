"""PostgreSQL helpers for the eligibility tests: what the catalog says about the results table's
partitions, and another session of the test database."""

import psycopg
from django.db import connection


def other_session() -> psycopg.Connection:
    """A second connection to the test database (another session: its own transactions and
    locks)."""
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )


def partitions() -> list[tuple[str, str]]:
    """(partition, its bound) of the results table, by name."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'retailers_eligibilityresult'::regclass
            ORDER BY 1
            """
        )
        return cursor.fetchall()


def build_tables() -> list[str]:
    """Tables under a partition build's name (retailers.eligibility_partitions), and their
    indexes: none once a build is swapped in."""
    with connection.cursor() as cursor:
        cursor.execute(r"SELECT relname::text FROM pg_class WHERE relname LIKE 'eligibility\_build%%' ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


def partition_of_each_mall() -> dict[int, str]:
    """The partition that holds each mall's stored results."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT mall_id, tableoid::regclass::text FROM retailers_eligibilityresult")
        return dict(cursor.fetchall())
