from collections import Counter

from django.db import migrations, models

import retailers.models

# A market without a mall keeps the UTC date its drivers' documents expired by until now; an
# operator sets its real zone in the admin.
NO_MALL_ZONE = "UTC"


def zone_from_malls(apps, schema_editor):
    """Each market takes the zone most of its malls have (the first mall's on a tie)."""
    Market = apps.get_model("retailers", "Market")
    Mall = apps.get_model("retailers", "Mall")
    zones: dict[int, Counter] = {}
    for market_id, time_zone in Mall.objects.order_by("pk").values_list("market_id", "time_zone"):
        zones.setdefault(market_id, Counter())[time_zone] += 1
    for market in Market.objects.all():
        counted = zones.get(market.pk)
        market.time_zone = counted.most_common(1)[0][0] if counted else NO_MALL_ZONE
        market.save(update_fields=["time_zone"])


class Migration(migrations.Migration):
    dependencies = [
        ("retailers", "0010_stock_without_duplicate_checks"),
    ]

    operations = [
        migrations.AddField(
            model_name="market",
            name="time_zone",
            field=models.CharField(
                default=NO_MALL_ZONE,
                help_text="IANA name, e.g. America/Los_Angeles. Its drivers' documents expire at the end of their date here.",
                max_length=64,
                validators=[retailers.models.validate_time_zone],
            ),
            preserve_default=False,
        ),
        # Reversed, the column goes with the AddField: nothing to undo here.
        migrations.RunPython(zone_from_malls, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="market",
            constraint=models.CheckConstraint(
                condition=models.Q(("time_zone", ""), _negated=True), name="market_time_zone_set"
            ),
        ),
    ]
