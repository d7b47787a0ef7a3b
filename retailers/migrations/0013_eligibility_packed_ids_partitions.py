"""Eligibility results: ids packed from the (mall, listing) pair, and on PostgreSQL one partition
per mall (retailers.eligibility_partitions).

The first full recompute of a mall builds the mall's partition as a table of its own, on a
helper connection when it can, and attaches it: two malls are then written and indexed at once
instead of one after the other (issue 5, point 9). Packed ids need no sequence, so a helper can
write them.

PostgreSQL: the table is rebuilt as `PARTITION BY LIST (mall_id)`, with a partition per mall
that exists now (eligibility_mall_<id>), a DEFAULT partition for malls added later
(eligibility_mall_default), and every row copied. Its primary key is the (listing, mall) pair:
a unique constraint of a partitioned table must contain the partition key anyway, the pair is what
every query looks results up by, and one unique index less is one index less for each first run
to build. The id, which packs the same pair (a CHECK says so), needs no index of its own:
lookups by id go through the pair (EligibilityResultAdmin.get_object). SQLite keeps one table,
as Django's model describes it.
"""

from django.db import migrations, models

_TABLE = "retailers_eligibilityresult"
_OLD = "retailers_eligibilityresult_unpartitioned"
_FACTOR = 1 << 32
_PAIR = "eligibility_one_row_per_listing_mall"
_FEED = "eligibility_feed"


def _pack_ids(apps, schema_editor) -> None:
    schema_editor.execute(f"UPDATE {_TABLE} SET id = CAST(mall_id AS BIGINT) * {_FACTOR} + listing_id")


def _set_aside(run) -> None:
    """Renames the table and its indexes out of the new table's way."""
    run(f"ALTER TABLE {_TABLE} RENAME TO {_OLD}")
    run(f"ALTER TABLE {_OLD} RENAME CONSTRAINT {_TABLE}_pkey TO {_OLD}_pkey")
    for name in (_PAIR, _FEED):
        run(f"ALTER INDEX IF EXISTS {name} RENAME TO {name}_unpartitioned")


def _partition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    _set_aside(run)
    run(f"CREATE TABLE {_TABLE} (LIKE {_OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (mall_id)")
    run(f"CREATE TABLE eligibility_mall_default PARTITION OF {_TABLE} DEFAULT")
    for mall_id in apps.get_model("retailers", "Mall").objects.values_list("pk", flat=True).order_by("pk"):
        run(f"CREATE TABLE eligibility_mall_{int(mall_id)} PARTITION OF {_TABLE} FOR VALUES IN ({int(mall_id)})")
    run(f"INSERT INTO {_TABLE} SELECT * FROM {_OLD} ORDER BY mall_id, listing_id")
    run(f"DROP TABLE {_OLD}")
    # The pair is the primary key, under the unique constraint's name (Django's model keeps `id` as
    # its primary key and the constraint by that name); the id has no index of its own.
    run(f"ALTER TABLE {_TABLE} ADD CONSTRAINT {_PAIR} PRIMARY KEY (listing_id, mall_id)")
    run(f"CREATE INDEX {_FEED} ON {_TABLE} (mall_id, computed_at, id)")


def _unpartition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run(f"ALTER TABLE {_TABLE} RENAME TO {_OLD}")
    run(f"ALTER TABLE {_OLD} RENAME CONSTRAINT {_PAIR} TO {_PAIR}_unpartitioned")
    run(f"ALTER INDEX {_FEED} RENAME TO {_FEED}_unpartitioned")
    run(f"CREATE TABLE {_TABLE} (LIKE {_OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    run(f"INSERT INTO {_TABLE} SELECT * FROM {_OLD} ORDER BY mall_id, listing_id")
    run(f"DROP TABLE {_OLD}")  # its partitions with it
    run(f"ALTER TABLE {_TABLE} ADD CONSTRAINT {_TABLE}_pkey PRIMARY KEY (id)")
    run(f"ALTER TABLE {_TABLE} ADD CONSTRAINT {_PAIR} UNIQUE (listing_id, mall_id)")
    run(f"CREATE INDEX {_FEED} ON {_TABLE} (mall_id, computed_at, id)")


class Migration(migrations.Migration):
    dependencies = [
        ("retailers", "0012_categories_lowercase"),
    ]

    operations = [
        migrations.AlterField(
            model_name="eligibilityresult",
            name="id",
            field=models.BigIntegerField(
                editable=False, help_text="mall id × 2³² + listing id", primary_key=True, serialize=False
            ),
        ),
        # Packed ids start at 2³² (mall ids start at 1), above every id the sequence gave.
        migrations.RunPython(_pack_ids, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="eligibilityresult",
            constraint=models.CheckConstraint(
                condition=models.Q(id=models.F("mall_id") * _FACTOR + models.F("listing_id"))
                & models.Q(listing_id__lt=_FACTOR),
                name="eligibility_id_packs_mall_and_listing",
            ),
        ),
        migrations.RunPython(_partition, _unpartition),
    ]
