"""Every write to stores: status changes (pause/resume) and settings."""

import datetime as dt
from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal.actors import actor_label_for
from portal.errors import ActionRefused
from retailers.eligibility_hooks import eligibility_after_store_change
from retailers.models import Store, StoreEvent, StoreHours, StoreStatus


def _record_store_event(
    *,
    store: Store,
    type: str,
    acting_user: AbstractBaseUser | None,
    at: dt.datetime,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    data: Mapping | None = None,
) -> StoreEvent:
    return StoreEvent.objects.create(
        store=store,
        type=type,
        from_status=from_status,
        to_status=to_status,
        actor=acting_user if acting_user is not None and acting_user.is_authenticated else None,
        actor_label=actor_label_for(acting_user),
        at=at,
        reason=reason,
        data=dict(data or {}),
    )


@transaction.atomic
def store_pause(*, store: Store, acting_user: AbstractBaseUser | None, reason: str) -> Store:
    """live → paused: the store takes no same-day orders until resumed.

    Side effects: Store.status/paused_*; one `store.paused` event; eligibility recompute of the
    store after commit.
    """
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say why same-day is paused; everyone on the board will see it.", code="validation")
    now = timezone.now()
    changed = Store.objects.filter(pk=store.pk, status=StoreStatus.LIVE).update(
        status=StoreStatus.PAUSED, paused_reason=reason, paused_at=now, paused_by=acting_user, updated_at=now
    )
    if changed != 1:
        current = Store.objects.get(pk=store.pk)
        raise ActionRefused(
            f"{store.name} is {current.get_status_display().lower()}: only a live store can be paused.",
            code="illegal-transition",
        )
    _record_store_event(
        store=store,
        type="store.paused",
        acting_user=acting_user,
        at=now,
        from_status=StoreStatus.LIVE,
        to_status=StoreStatus.PAUSED,
        reason=reason,
    )
    eligibility_after_store_change(store_ids=[store.pk])
    store.refresh_from_db()
    return store


@transaction.atomic
def store_resume(*, store: Store, acting_user: AbstractBaseUser | None) -> Store:
    """paused → live. Side effects: Store.status/paused_*; one `store.resumed` event; eligibility
    recompute of the store after commit."""
    now = timezone.now()
    changed = Store.objects.filter(pk=store.pk, status=StoreStatus.PAUSED).update(
        status=StoreStatus.LIVE, paused_reason="", paused_at=None, paused_by=None, updated_at=now
    )
    if changed != 1:
        raise ActionRefused(f"{store.name} is not paused.", code="illegal-transition")
    _record_store_event(
        store=store,
        type="store.resumed",
        acting_user=acting_user,
        at=now,
        from_status=StoreStatus.PAUSED,
        to_status=StoreStatus.LIVE,
    )
    eligibility_after_store_change(store_ids=[store.pk])
    store.refresh_from_db()
    return store


@transaction.atomic
def store_update_settings(
    *,
    store: Store,
    acting_user: AbstractBaseUser | None,
    same_day_cutoff: dt.time,
    prep_sla_minutes: int,
    pickup_instructions: str,
    hours: Mapping[int, tuple[dt.time, dt.time] | None],
) -> Store:
    """Changes a store's same-day settings and opening hours (weekday → (opens, closes), or
    None for closed).

    Side effects: Store fields, StoreHours rows; one `store.settings_changed` event listing
    what changed; eligibility recompute of the store after commit.
    """
    now = timezone.now()
    changes: dict[str, object] = {}
    for name, value in (
        ("same_day_cutoff", same_day_cutoff),
        ("prep_sla_minutes", prep_sla_minutes),
        ("pickup_instructions", pickup_instructions),
    ):
        if getattr(store, name) != value:
            changes[name] = str(value)
            setattr(store, name, value)
    current = {row.weekday: row for row in store.hours.all()}
    for weekday, span in hours.items():
        row = current.get(weekday)
        if span is None:
            if row is not None:
                row.delete()
                changes[f"hours.{weekday}"] = "closed"
            continue
        opens_at, closes_at = span
        if row is None:
            StoreHours.objects.create(store=store, weekday=weekday, opens_at=opens_at, closes_at=closes_at)
        elif (row.opens_at, row.closes_at) != (opens_at, closes_at):
            row.opens_at, row.closes_at = opens_at, closes_at
            row.save(update_fields=["opens_at", "closes_at"])
        else:
            continue
        changes[f"hours.{weekday}"] = f"{opens_at:%H:%M}-{closes_at:%H:%M}"
    if changes:
        store.updated_at = now
        store.save(update_fields=["same_day_cutoff", "prep_sla_minutes", "pickup_instructions", "updated_at"])
        _record_store_event(store=store, type="store.settings_changed", acting_user=acting_user, at=now, data=changes)
        eligibility_after_store_change(store_ids=[store.pk])
    return store
