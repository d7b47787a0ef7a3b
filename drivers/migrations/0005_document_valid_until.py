import datetime as dt
import zoneinfo

from django.db import migrations, models


def end_of_local_day(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """As drivers.models.end_of_local_day when this was written (a migration keeps its own)."""
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    readings = (midnight.astimezone(dt.UTC), midnight.replace(fold=1).astimezone(dt.UTC))
    return min(instant for instant in readings if instant.astimezone(tz).date() > day)


def fill_valid_until(apps, schema_editor):
    """Each document is valid through its expiry date in its driver's home market's zone."""
    DriverDocument = apps.get_model("drivers", "DriverDocument")
    documents = list(DriverDocument.objects.select_related("driver__home_market"))
    for document in documents:
        zone = zoneinfo.ZoneInfo(document.driver.home_market.time_zone)
        document.valid_until = end_of_local_day(document.expires_on, zone)
    DriverDocument.objects.bulk_update(documents, ["valid_until"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("drivers", "0004_replan_and_packing"),
        ("retailers", "0011_market_time_zone"),
    ]

    operations = [
        migrations.AddField(
            model_name="driverdocument",
            name="valid_until",
            field=models.DateTimeField(editable=False, null=True),
        ),
        # Reversed, the column goes with the AddField: nothing to undo here.
        migrations.RunPython(fill_valid_until, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="driverdocument",
            name="valid_until",
            field=models.DateTimeField(editable=False),
        ),
    ]
