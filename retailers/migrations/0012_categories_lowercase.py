"""Listing categories and the program limits' categories stored trimmed and lowercase (as the
import always stored them; the listing admin kept what was typed, "Apparel", which the limits'
category check compares case-sensitively). Each changed listing gets an eligibility request, so
the sweeper recomputes it in seconds rather than at the nightly run."""

from collections import defaultdict

from django.db import migrations
from django.utils import timezone

CHUNK = 1000
LISTING_REQUEST = 1  # EligibilityRequestKind.LISTING


def _normal(value: str) -> str:
    # retailers.models.normalize_category, frozen here as migrations must be.
    return value.strip().lower()


def lowercase_categories(apps, schema_editor):
    Listing = apps.get_model("retailers", "Listing")
    ProgramLimits = apps.get_model("retailers", "ProgramLimits")
    EligibilityRequest = apps.get_model("retailers", "EligibilityRequest")

    changed: dict[str, list[int]] = defaultdict(list)
    for pk, category in Listing.objects.values_list("pk", "category").iterator(chunk_size=CHUNK):
        if _normal(category) != category:
            changed[_normal(category)].append(pk)
    now = timezone.now()
    for category, ids in changed.items():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            Listing.objects.filter(pk__in=chunk).update(category=category)
            EligibilityRequest.objects.bulk_create(
                [EligibilityRequest(kind=LISTING_REQUEST, object_id=pk, created_at=now) for pk in chunk],
                ignore_conflicts=True,
            )

    for limits in ProgramLimits.objects.all():
        parts = dict.fromkeys(_normal(part) for part in limits.allowed_categories.split(",") if part.strip())
        normal = ",".join(parts)
        if normal != limits.allowed_categories:
            limits.allowed_categories = normal
            limits.save(update_fields=["allowed_categories"])


class Migration(migrations.Migration):
    dependencies = [
        ("retailers", "0011_market_time_zone"),
    ]

    operations = [
        migrations.RunPython(lowercase_categories, migrations.RunPython.noop),
    ]
