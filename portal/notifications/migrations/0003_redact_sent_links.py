"""Messages already sent that carry a set-password link drop it, as send_due does from now on."""

from django.db import migrations

# The kinds marked `secret` in portal.notifications.kinds when this migration was written.
SECRET_KINDS = ["store.invitation", "account.password_reset"]
REDACTED = "Removed after sending: this message carried a one-time set-password link."


def redact_sent_links(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    Notification.objects.filter(kind__in=SECRET_KINDS, status="sent").update(body=REDACTED, html_body="")


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_html_body")]

    operations = [migrations.RunPython(redact_sent_links, migrations.RunPython.noop)]
