from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("drivers", "0005_document_valid_until"),
    ]

    operations = [
        migrations.AddField(
            model_name="driverdocument",
            name="expiry_reminded_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
