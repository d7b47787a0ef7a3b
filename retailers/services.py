"""Every write to stores: status changes (pause/resume, go live, suspend/reinstate) and settings;
and the program limits every store's listings are checked against."""

import datetime as dt
from collections.abc import Iterable, Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal.actors import actor_label_for
from portal.errors import ActionRefused
from retailers.eligibility_hooks import eligibility_after_program_limits_change, eligibility_after_store_change
from retailers.models import ProgramLimits, SizeClass, Store, StoreEvent, StoreHours, StoreStatus
from retailers.selectors import store_settings_version

SS = StoreStatus
# The store lifecycle of PRODUCT.md, declared once: applied → approved → onboarding → live ⇄
# paused, suspended (and back), rejected. Every status change below goes through `_transition`.
STORE_TRANSITIONS: dict[str, frozenset[str]] = {
    SS.APPLIED: frozenset({SS.APPROVED, SS.ONBOARDING, SS.REJECTED}),
    SS.APPROVED: frozenset({SS.ONBOARDING, SS.REJECTED}),
    SS.ONBOARDING: frozenset({SS.LIVE, SS.SUSPENDED}),
    SS.LIVE: frozenset({SS.PAUSED, SS.SUSPENDED}),
    SS.PAUSED: frozenset({SS.LIVE, SS.SUSPENDED}),
    # Reinstating returns a suspended store to where it was: live, or onboarding.
    SS.SUSPENDED: frozenset({SS.LIVE, SS.ONBOARDING}),
    SS.REJECTED: frozenset(),
}
SUSPENDABLE = frozenset(source for source, targets in STORE_TRANSITIONS.items() if SS.SUSPENDED in targets)
REASON_MAX = 300


def _clean_reason(reason: str, *, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused(f"Say why the store is {what}; the store's staff will see it.", code="validation")
    if len(reason) > REASON_MAX:
        raise ActionRefused(f"Keep the reason to {REASON_MAX} characters or fewer.", code="validation")
    return reason


def _status_label(status: str) -> str:
    return StoreStatus(status).label.lower()


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


# Leaving `paused` (resume, suspend) clears what the pause recorded.
_NOT_PAUSED = {"paused_reason": "", "paused_at": None, "paused_by": None}


def _transition(
    store: Store,
    *,
    seen: str,
    to: str,
    event: str,
    acting_user: AbstractBaseUser | None,
    at: dt.datetime | None = None,
    reason: str = "",
    data: Mapping | None = None,
    **fields,
) -> Store:
    """The one write of a store status change, inside the caller's transaction: a conditional
    UPDATE from the status the caller checked (someone else's change in between refuses it), one
    StoreEvent, and the eligibility recompute of the store after commit."""
    if to not in STORE_TRANSITIONS[seen]:
        raise ActionRefused(
            f"A store cannot go from {_status_label(seen)} to {_status_label(to)}.", code="illegal-transition"
        )
    at = at or timezone.now()
    changed = Store.objects.filter(pk=store.pk, status=seen).update(status=to, updated_at=at, **fields)
    if changed != 1:
        raise ActionRefused(f"{store.name} was changed by someone else a moment ago.", code="conflict")
    _record_store_event(
        store=store,
        type=event,
        acting_user=acting_user,
        at=at,
        from_status=seen,
        to_status=to,
        reason=reason,
        data=data,
    )
    eligibility_after_store_change(store_ids=[store.pk])
    store.refresh_from_db()
    return store


@transaction.atomic
def store_record_added(*, store: Store, acting_user: AbstractBaseUser | None) -> StoreEvent:
    """A store added by hand in the admin (not from an application) starts its history: who
    added it, and in which status (applied, approved or onboarding: it goes live from there)."""
    return _record_store_event(
        store=store, type="store.added", acting_user=acting_user, at=timezone.now(), to_status=store.status
    )


def store_pause(*, store: Store, acting_user: AbstractBaseUser | None, reason: str) -> Store:
    """live → paused: the store takes no same-day orders until resumed.

    Side effects: Store.status/paused_*; one `store.paused` event; eligibility recompute of the
    store after commit.
    """
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say why same-day is paused; everyone on the board will see it.", code="validation")
    current = Store.objects.get(pk=store.pk)
    if current.status == StoreStatus.PAUSED:
        # Someone paused it first (another tab, a colleague): say whose reason stands, and that
        # the one just typed was not used.
        raise ActionRefused(
            f"{store.name} is paused already: “{current.paused_reason}”. Your reason “{reason}” was not saved; "
            "resume, then pause again to change it.",
            code="illegal-transition",
        )
    if current.status != StoreStatus.LIVE:
        raise ActionRefused(
            f"{store.name} is {current.get_status_display().lower()}: only a live store can be paused.",
            code="illegal-transition",
        )
    now = timezone.now()
    return _transition(
        store,
        seen=StoreStatus.LIVE,
        to=StoreStatus.PAUSED,
        event="store.paused",
        acting_user=acting_user,
        at=now,
        reason=reason,
        paused_reason=reason,
        paused_at=now,
        paused_by=acting_user,
    )


@transaction.atomic
def store_resume(*, store: Store, acting_user: AbstractBaseUser | None) -> Store:
    """paused → live. Side effects: Store.status/paused_*; one `store.resumed` event; eligibility
    recompute of the store after commit."""
    if Store.objects.filter(pk=store.pk).values_list("status", flat=True).get() != StoreStatus.PAUSED:
        raise ActionRefused(f"{store.name} is not paused.", code="illegal-transition")
    return _transition(
        store,
        seen=StoreStatus.PAUSED,
        to=StoreStatus.LIVE,
        event="store.resumed",
        acting_user=acting_user,
        **_NOT_PAUSED,
    )


# An operator's decision on a store that is not onboarding yet (one a seller manager or operator
# added in the admin; stores from /join/ applications start in onboarding).
_REVIEW_EVENTS = {
    SS.APPROVED: "store.approved",
    SS.ONBOARDING: "store.onboarding_started",
    SS.REJECTED: "store.rejected",
}


@transaction.atomic
def store_review(*, store: Store, acting_user: AbstractBaseUser | None, to: str, reason: str = "") -> Store:
    """applied → approved, onboarding or rejected; approved → onboarding or rejected. Refused
    for any other move (a rejected store stays rejected).

    Side effects: Store.status; one `store.approved`, `store.onboarding_started` or
    `store.rejected` event; eligibility recompute of the store after commit.
    """
    current = Store.objects.get(pk=store.pk)
    if to not in _REVIEW_EVENTS:
        raise ActionRefused(
            f"A store cannot go from {_status_label(current.status)} to {_status_label(to)} here.",
            code="illegal-transition",
        )
    return _transition(
        store,
        seen=current.status,
        to=to,
        event=_REVIEW_EVENTS[to],
        acting_user=acting_user,
        reason=reason.strip()[:REASON_MAX],
    )


@transaction.atomic
def store_update_settings(
    *,
    store: Store,
    acting_user: AbstractBaseUser | None,
    same_day_cutoff: dt.time,
    prep_sla_minutes: int,
    pickup_instructions: str,
    hours: Mapping[int, tuple[dt.time, dt.time] | None],
    hourly_capacity: int | None = None,
    seen_version: str | None = None,
) -> Store:
    """Changes a store's same-day settings, hourly capacity (None keeps it) and opening hours
    (weekday → (opens, closes), or None for closed). With `seen_version`
    (retailers.selectors.store_settings_version of the settings the person saw), refused when
    someone else saved in between: the form posts every field, so saving it would put back what
    the page showed.

    Side effects: Store fields, StoreHours rows; one `store.settings_changed` event listing
    what changed; eligibility recompute of the store after commit.
    """
    # The store's row lock queues a second manager's save behind the first: each compares
    # with what is stored now (not what its page loaded), so two saves opening the same closed
    # day update one hours row instead of both inserting it (a unique-constraint error).
    locked = Store.objects.select_for_update().get(pk=store.pk)
    if seen_version is not None and seen_version != store_settings_version(store=locked):
        raise ActionRefused(
            "Someone else saved these settings while you were editing: nothing was saved. The form now shows "
            "the current settings (their change is under Recent changes); make your change again.",
            code="conflict",
        )
    now = timezone.now()
    changes: dict[str, object] = {}
    for name, value in (
        ("same_day_cutoff", same_day_cutoff),
        ("prep_sla_minutes", prep_sla_minutes),
        ("hourly_capacity", locked.hourly_capacity if hourly_capacity is None else hourly_capacity),
        ("pickup_instructions", pickup_instructions),
    ):
        if getattr(locked, name) != value:
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
        store.save(
            update_fields=[
                "same_day_cutoff",
                "prep_sla_minutes",
                "hourly_capacity",
                "pickup_instructions",
                "updated_at",
            ]
        )
        _record_store_event(store=store, type="store.settings_changed", acting_user=acting_user, at=now, data=changes)
        eligibility_after_store_change(store_ids=[store.pk])
    return store


@transaction.atomic
def store_go_live(
    *, store: Store, acting_user: AbstractBaseUser | None, automatic: bool = False, note: str = ""
) -> Store:
    """onboarding → live, by an operator or (automatic) by the system when the checklist
    completes in a market with `auto_go_live`. Refused unless the store is in onboarding and its
    onboarding checklist (retailers.onboarding) is complete.

    Side effects: Store.status; one `store.went_live` event; eligibility recompute of the store
    after commit.
    """
    from retailers.onboarding import checklist_for

    current = Store.objects.select_related("mall__market").get(pk=store.pk)
    if current.status != SS.ONBOARDING:
        raise ActionRefused(
            f"{current.name} is {_status_label(current.status)}: only a store in onboarding can go live.",
            code="illegal-transition",
        )
    checklist = checklist_for(current)
    if not checklist.complete:
        missing = "; ".join(item.title.lower() for item in checklist.items if not item.done)
        raise ActionRefused(
            f"{current.name} cannot go live yet: the onboarding checklist is {checklist.done_count} of "
            f"{checklist.total} done. Still to do: {missing}.",
            code="checklist-incomplete",
        )
    return _transition(
        store,
        seen=SS.ONBOARDING,
        to=SS.LIVE,
        event="store.went_live",
        acting_user=acting_user,
        reason=(
            note.strip()[:REASON_MAX]
            or "Onboarding checklist complete" + (": went live automatically." if automatic else ".")
        ),
        data={"automatic": automatic},
    )


@transaction.atomic
def store_suspend(*, store: Store, acting_user: AbstractBaseUser | None, reason: str) -> Store:
    """onboarding, live or paused → suspended, by an operator: the store takes no orders and
    drops out of eligibility until reinstated.

    Side effects: Store.status (pause fields cleared); one `store.suspended` event with the
    status it left; eligibility recompute of the store after commit.
    """
    reason = _clean_reason(reason, what="suspended")
    current = Store.objects.get(pk=store.pk)
    if current.status not in SUSPENDABLE:
        raise ActionRefused(
            f"{current.name} is {_status_label(current.status)}: only a store in onboarding, live or paused "
            "can be suspended.",
            code="illegal-transition",
        )
    return _transition(
        store,
        seen=current.status,
        to=SS.SUSPENDED,
        event="store.suspended",
        acting_user=acting_user,
        reason=reason,
        **_NOT_PAUSED,
    )


@transaction.atomic
def store_reinstate(*, store: Store, acting_user: AbstractBaseUser | None, reason: str) -> Store:
    """suspended → live (or back to onboarding when it was suspended during onboarding), by an
    operator. A store suspended while paused comes back live: the pause ended with the
    suspension.

    Side effects: Store.status; one `store.reinstated` event; eligibility recompute of the store
    after commit.
    """
    reason = _clean_reason(reason, what="reinstated")
    current = Store.objects.get(pk=store.pk)
    if current.status != SS.SUSPENDED:
        raise ActionRefused(
            f"{current.name} is {_status_label(current.status)}: only a suspended store can be reinstated.",
            code="illegal-transition",
        )
    left = (
        StoreEvent.objects.filter(store=store, type="store.suspended")
        .order_by("-at", "-pk")
        .values_list("from_status", flat=True)
        .first()
    )
    target = SS.ONBOARDING if left == SS.ONBOARDING else SS.LIVE
    return _transition(
        store, seen=SS.SUSPENDED, to=target, event="store.reinstated", acting_user=acting_user, reason=reason
    )


@transaction.atomic
def program_limits_update(
    *, max_weight_grams: int, allowed_size_classes: Iterable[str], allowed_categories: Iterable[str]
) -> ProgramLimits:
    """Sets the program limits: the one row (ProgramLimits.current()), created on the first save.
    Size classes are kept in SizeClass order; categories normalised (trimmed, lowercase), each once.

    Side effects: the ProgramLimits row; one eligibility request per mall (every listing is checked
    against the new limits by the next sweep, in seconds).
    """
    sizes = set(allowed_size_classes)
    if max_weight_grams < 1:
        raise ActionRefused("The heaviest listing allowed must weigh at least 1 gram.", code="validation")
    if not sizes or not sizes <= set(SizeClass.values):
        raise ActionRefused(f"Choose size classes among {', '.join(SizeClass.values)}.", code="validation")
    limits = ProgramLimits.objects.select_for_update().order_by("pk").first() or ProgramLimits()
    limits.max_weight_grams = max_weight_grams
    limits.allowed_size_classes = ",".join(size for size in SizeClass.values if size in sizes)
    limits.allowed_categories = ",".join(ProgramLimits.categories_list(",".join(allowed_categories)))
    limits.save()
    eligibility_after_program_limits_change()
    return limits
