from django import template
from django.utils import timezone

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
    local = timezone.localtime(value)
    today = timezone.localdate()
    text = local.strftime("%I:%M %p").lstrip("0")
    if local.date() == today:
        return text
    if (local.date() - today).days == 1:
        return f"{text} tomorrow"
    return f"{local:%a} {text}"
