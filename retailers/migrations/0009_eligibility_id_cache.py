"""The results' id sequence hands each session its ids a thousand at a time (PostgreSQL).

The first full recompute inserts 800,000 rows in one statement; with the default cache of one,
each row's id is a sequence buffer lock and, every 32 rows, a WAL record: about 6 % of that run.
A session that ends leaves the rest of its thousand unused (gaps in ids, harmless: the feed pages
on computed_at first, and one recompute's rows all come from one session, in order).
"""

from django.db import migrations

_TABLE = "retailers_eligibilityresult"


def _id_cache(size: int):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {_TABLE} ALTER COLUMN id SET CACHE {size}")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("retailers", "0008_eligibility_request"),
    ]

    operations = [migrations.RunPython(_id_cache(1000), _id_cache(1))]
