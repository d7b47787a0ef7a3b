"""Form data the admin's pages post (tests)."""

from retailers.models import Store


def store_change_data(store: Store, **changes) -> dict:
    """What the store's admin change form posts when nothing is edited, its hours rows included;
    `changes` replaces fields."""
    data = {
        "seller": store.seller_id,
        "mall": store.mall_id,
        "name": store.name,
        "unit": store.unit,
        "pickup_instructions": "",
        "same_day_cutoff": "17:00",
        "prep_sla_minutes": store.prep_sla_minutes,
        "hourly_capacity": store.hourly_capacity,
        "status": store.status,
        "paused_reason": store.paused_reason,
    }
    for prefix in ("hours", "memberships"):
        total = store.hours.count() if prefix == "hours" else store.memberships.count()
        data |= {f"{prefix}-TOTAL_FORMS": total, f"{prefix}-INITIAL_FORMS": total}
    for index, row in enumerate(store.hours.all()):
        data |= {
            f"hours-{index}-id": row.pk,
            f"hours-{index}-store": store.pk,
            f"hours-{index}-weekday": row.weekday,
            f"hours-{index}-opens_at": row.opens_at.strftime("%H:%M"),
            f"hours-{index}-closes_at": row.closes_at.strftime("%H:%M"),
        }
    return data | changes
