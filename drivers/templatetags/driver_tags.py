from django import template
from django.utils import timezone

from portal.localtime import clock_with_day

register = template.Library()


@register.filter
def dollars(cents: int | None) -> str:
    """1850 → "$18.50"."""
    return f"${(cents or 0) / 100:,.2f}"


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)


@register.filter
def clock(value) -> str:
    """A time in the active zone (the mall's, in the templates), with its day when that is not
    today: "9:40 PM", "1:39 AM tomorrow", "Thu 10:00 AM"."""
    if value is None:
        return ""
    zone = timezone.get_current_timezone()
    return clock_with_day(value, zone, timezone.localdate(timezone=zone))


@register.filter
def ready_about(value) -> str:
    """When a store said it would have an order packed, in the active zone: "ready about 4:09 AM",
    or, once that time has passed, "was due ready at 4:09 AM" (the store is late; no made-up
    estimate)."""
    if value is None:
        return ""
    at = clock(value)
    return f"ready about {at}" if value >= timezone.now() else f"was due ready at {at}"
