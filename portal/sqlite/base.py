"""The embedded default's database backend: Django's SQLite backend, with integers beyond
SQLite's 64-bit range sent as floats.

Python's sqlite3 module refuses such an integer with OverflowError, so an id typed into a URL or
a form (`/driver/offers/99999999999999999999/accept/`, an admin action's selected ids, a filter's
value) made a 500 on SQLite where PostgreSQL simply finds nothing. As a float the value compares
numerically with the integer column: it equals no row, and ranges still order correctly."""

from collections.abc import Mapping

from django.db.backends.sqlite3 import base

_SMALLEST, _LARGEST = -(2**63), 2**63 - 1


def _in_range(value):
    if isinstance(value, int) and not isinstance(value, bool) and not _SMALLEST <= value <= _LARGEST:
        return float(value)
    return value


def _params_in_range(params):
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {name: _in_range(value) for name, value in params.items()}
    return [_in_range(value) for value in params]


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    def execute(self, query, params=None):
        return super().execute(query, _params_in_range(params))

    def executemany(self, query, param_list):
        return super().executemany(query, (_params_in_range(params) for params in param_list))


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name=None):
        return self.connection.cursor(factory=SQLiteCursorWrapper)
