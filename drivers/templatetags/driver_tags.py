from django import template

register = template.Library()


@register.filter
def dollars(cents: int | None) -> str:
    """1850 → "$18.50"."""
    return f"${(cents or 0) / 100:,.2f}"


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)
