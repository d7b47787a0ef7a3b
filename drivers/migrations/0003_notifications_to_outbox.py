from django.db import migrations


def move_unsent(apps, schema_editor):
    """Unsent driver notifications move to the one outbox, so nothing waiting is lost."""
    DriverNotification = apps.get_model("drivers", "DriverNotification")
    Notification = apps.get_model("notifications", "Notification")
    rows = []
    for old in DriverNotification.objects.filter(sent_at__isnull=True).select_related("driver__user"):
        to = old.driver.user.email if old.channel == "email" else old.driver.phone
        if to:
            rows.append(
                Notification(
                    kind=old.kind,
                    channel=old.channel,
                    user=old.driver.user,
                    to=to,
                    subject=old.subject,
                    body=old.body,
                    dedupe_key=old.dedupe_key,
                    created_at=old.created_at,
                    due_at=old.created_at,
                )
            )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("drivers", "0002_routes_offers"),
        ("notifications", "0001_outbox"),
    ]

    operations = [
        migrations.RunPython(move_unsent, migrations.RunPython.noop),
        migrations.DeleteModel(name="DriverNotification"),
    ]
