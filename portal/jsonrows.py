"""Model rows as JSON values, both ways, for the statements of the marketplace API's intake that
send rows to PostgreSQL as JSON documents (jsonb_populate_record) or read them back as JSON
arrays (json_build_array): a handful of parameters and one result row however many rows travel.

The conversions are worked out once per model: going through each field's get_db_prep_save or
from_db_value cost more than the rest of an order's Python."""

import datetime as dt
import functools
from collections.abc import Callable
from decimal import Decimal

from django.db import connection, models

# Fields whose values JSON carries as they are (strings, numbers, booleans, ids, documents).
_AS_IS_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.ForeignKey,
    models.JSONField,
)


def _as_is(value: object) -> object:
    return value


def _to_text(value: object) -> str | None:
    # Dates, times and datetimes in ISO 8601, decimals as their digits: PostgreSQL parses both
    # by the column's type.
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)


def _loader(parse: Callable[[str], object]) -> Callable[[object], object]:
    def load(value: object) -> object:
        return None if value is None else parse(value)

    return load


def _fields(model: type[models.Model]) -> list[models.Field]:
    for field in model._meta.concrete_fields:
        if not isinstance(field, _AS_IS_FIELDS + (models.DateField, models.TimeField, models.DecimalField)):
            raise TypeError(f"{model.__name__}.{field.name}: no JSON form for a {type(field).__name__}")
    return list(model._meta.concrete_fields)


@functools.cache
def _write_plan(model: type[models.Model]) -> list[tuple[models.Field, Callable[[object], object]]]:
    """(field, JSON value of its attribute) for each column of `model`'s INSERT."""
    return [
        (field, _as_is if isinstance(field, _AS_IS_FIELDS) else _to_text)
        for field in _fields(model)
        if not field.primary_key
    ]


def row_document(obj: models.Model) -> dict:
    """The column values of `obj`'s INSERT as a JSON object (the primary key left out), as
    jsonb_populate_record reads it."""
    return {field.column: value_of(getattr(obj, field.attname)) for field, value_of in _write_plan(type(obj))}


def new_row_document(model: type[models.Model], **values: object) -> dict:
    """row_document(model(**values)) without making the instance (Model.__init__ cost more
    than the rest of the row): `values` by attribute name (`order_id`, not `order`), every
    other column its field's default."""
    plan = _write_plan(model)
    unknown = values.keys() - {field.attname for field, _ in plan}
    if unknown:
        raise TypeError(f"{model.__name__} has no column for {sorted(unknown)}")
    return {
        field.column: value_of(values[field.attname] if field.attname in values else field.get_default())
        for field, value_of in plan
    }


@functools.cache
def _read_plan(model: type[models.Model]) -> list[Callable[[object], object]]:
    plan = []
    for field in _fields(model):
        # DateTimeField is a DateField: the more specific first.
        if isinstance(field, models.DateTimeField):
            plan.append(_loader(dt.datetime.fromisoformat))
        elif isinstance(field, models.DateField):
            plan.append(_loader(dt.date.fromisoformat))
        elif isinstance(field, models.TimeField):
            plan.append(_loader(dt.time.fromisoformat))
        elif isinstance(field, models.DecimalField):
            plan.append(_loader(Decimal))
        else:
            plan.append(_as_is)
    return plan


def json_array_sql(model: type[models.Model], alias: str) -> str:
    """SQL for a JSON array of `alias`'s columns, in the model's field order; decimals travel as
    text, so they keep every digit."""
    quote = connection.ops.quote_name
    columns = [
        f"{alias}.{quote(field.column)}" + ("::text" if isinstance(field, models.DecimalField) else "")
        for field in _fields(model)
    ]
    return f"json_build_array({', '.join(columns)})"


def from_json_array(model: type[models.Model], values: list) -> models.Model:
    """The instance of a row that json_array_sql gave, as the ORM would have loaded it."""
    return model.from_db(
        connection.alias, None, [load(value) for load, value in zip(_read_plan(model), values, strict=True)]
    )
