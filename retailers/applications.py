"""Every write to store applications: submit (the public /join/ page), approve and reject (an
operator in the admin). Approval turns the application into a seller (found or created by its
marketplace seller id), a store in `onboarding` with the application's hours, the store's first
events, and an invitation for the applicant as the store's manager, all in one transaction."""

import datetime as dt
from collections.abc import Mapping, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.actors import actor_label_for
from portal.errors import ActionRefused
from portal.notifications.models import Channel
from portal.notifications.services import Recipient, notify
from retailers.invitations import invite_to_store
from retailers.models import (
    ApplicationStatus,
    Mall,
    Seller,
    StaffRole,
    Store,
    StoreApplication,
    StoreEvent,
    StoreHours,
    StoreStatus,
)

REASON_MAX = 300  # StoreEvent.reason


def _context(application: StoreApplication, reason: str = "") -> dict[str, object]:
    return {
        "contact_name": application.contact_name,
        "store_name": application.store_name,
        "mall": application.mall.name,
        "unit": application.unit,
        "reference": application.reference,
        "seller_id": application.marketplace_seller_id,
        "reason": reason,
    }


def _email_applicant(application: StoreApplication, *, kind: str, reason: str = "") -> None:
    notify(
        recipients=[Recipient(email=application.email)],
        channels=[Channel.EMAIL],
        kind=kind,
        context=_context(application, reason),
        dedupe_key=f"{kind}:{application.pk}",
    )


@transaction.atomic
def application_submit(
    *,
    marketplace_seller_id: str,
    seller_name: str,
    store_name: str,
    mall: Mall,
    unit: str,
    contact_name: str,
    email: str,
    phone: str,
    hours: Mapping[int, tuple[dt.time, dt.time] | None],
    categories: Sequence[str],
    estimated_daily_orders: int,
) -> StoreApplication:
    """Records an application (already validated by JoinForm) as `applied`.

    Side effects: one StoreApplication; one outbox email to the applicant
    (`application.received`)."""
    application = StoreApplication.objects.create(
        marketplace_seller_id=marketplace_seller_id,
        seller_name=seller_name,
        store_name=store_name,
        mall=mall,
        unit=unit,
        contact_name=contact_name,
        email=email,
        phone=phone,
        hours={
            str(day): ([f"{span[0]:%H:%M}", f"{span[1]:%H:%M}"] if span else None)
            for day, span in sorted(hours.items())
        },
        categories=list(categories),
        estimated_daily_orders=estimated_daily_orders,
        created_at=timezone.now(),
    )
    _email_applicant(application, kind="application.received")
    return application


def _claim(*, application: StoreApplication, to_status: str, acting_user, reason: str, now: dt.datetime) -> None:
    """applied → approved/rejected with a conditional UPDATE, so two operators (or two clicks)
    cannot both decide; the loser is refused with what happened first."""
    changed = StoreApplication.objects.filter(pk=application.pk, status=ApplicationStatus.APPLIED).update(
        status=to_status, reason=reason, reviewed_by=acting_user, reviewed_at=now
    )
    if changed != 1:
        current = StoreApplication.objects.select_related("reviewed_by").get(pk=application.pk)
        who = f" by {actor_label_for(current.reviewed_by, fallback='an operator')}" if current.reviewed_at else ""
        raise ActionRefused(
            f"Application {current.reference} ({current.store_name}) was already "
            f"{current.get_status_display().lower()}{who}: only a new application can be approved or rejected.",
            code="illegal-transition",
        )


def _event(*, store: Store, type: str, actor, actor_label: str, at: dt.datetime, **fields) -> StoreEvent:
    return StoreEvent.objects.create(
        store=store,
        type=type,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label,
        at=at,
        **fields,
    )


@transaction.atomic
def application_approve(
    *,
    application: StoreApplication,
    acting_user: AbstractBaseUser,
    reason: str = "",
    existing_seller_confirmed: bool = False,
) -> StoreApplication:
    """applied → approved, and the store is set up for onboarding.

    Refused (ActionRefused, nothing written) when the application was already decided, or when
    the seller already has a store in that unit of that mall. Anyone can type a known seller's
    marketplace id on /join/, and the store's manager then sees that seller's catalogue: an
    application naming a seller that already exists is refused (code `existing-seller`) unless
    the operator says that seller confirmed the applicant (`existing_seller_confirmed`).

    Side effects: the application's status, reviewer, time and store; a Seller found or created
    by marketplace seller id; a Store in `onboarding` with StoreHours from the application;
    StoreEvents store.applied (actor: the applicant), store.approved and
    store.onboarding_started (actor: the operator); an invitation of the applicant as the
    store's manager (invite_to_store: maybe a User, a StoreMembership, its email); an
    `application.approved` email to the applicant."""
    reason = " ".join((reason or "").split())
    if len(reason) > REASON_MAX:
        raise ActionRefused(f"Keep the reason to {REASON_MAX} characters or fewer.", code="validation")
    now = timezone.now()
    _claim(
        application=application, to_status=ApplicationStatus.APPROVED, acting_user=acting_user, reason=reason, now=now
    )
    seller, created = Seller.objects.get_or_create(
        marketplace_seller_id=application.marketplace_seller_id, defaults={"name": application.seller_name}
    )
    if not created and not existing_seller_confirmed:
        raise ActionRefused(
            f"{application.marketplace_seller_id} is the seller id of {seller.name}, who already sells here: approve "
            f"only once {seller.name} has confirmed that {application.contact_name} may open a store for them.",
            code="existing-seller",
        )
    if Store.objects.filter(seller=seller, mall=application.mall_id, unit__iexact=application.unit).exists():
        raise ActionRefused(
            f"{seller.name} already has a store in unit {application.unit} at {application.mall.name}: "
            "reject this application or change the existing store.",
            code="conflict",
        )
    try:
        with transaction.atomic():
            store = Store.objects.create(
                seller=seller,
                mall=application.mall,
                name=application.store_name,
                unit=application.unit,
                status=StoreStatus.ONBOARDING,
            )
    except IntegrityError:  # a store for that unit was created at the same moment
        raise ActionRefused(
            f"{seller.name} already has a store in unit {application.unit} at {application.mall.name}.",
            code="conflict",
        ) from None
    StoreHours.objects.bulk_create(
        StoreHours(store=store, weekday=weekday, opens_at=span[0], closes_at=span[1])
        for weekday, span in application.hour_spans().items()
        if span is not None
    )
    StoreApplication.objects.filter(pk=application.pk).update(store=store)
    operator = actor_label_for(acting_user)
    data = {"application": application.pk}
    _event(
        store=store,
        type="store.applied",
        actor=None,
        actor_label=f"{application.contact_name} (applicant)"[:120],
        at=application.created_at,
        to_status=StoreStatus.APPLIED,
        data=data,
    )
    _event(
        store=store,
        type="store.approved",
        actor=acting_user,
        actor_label=operator,
        at=now,
        from_status=StoreStatus.APPLIED,
        to_status=StoreStatus.APPROVED,
        reason=reason,
        data=data,
    )
    _event(
        store=store,
        type="store.onboarding_started",
        actor=acting_user,
        actor_label=operator,
        at=now,
        from_status=StoreStatus.APPROVED,
        to_status=StoreStatus.ONBOARDING,
        data=data,
    )
    invite_to_store(
        store=store,
        email=application.email,
        role=StaffRole.MANAGER,
        invited_by=acting_user,
        full_name=application.contact_name,
    )
    application.refresh_from_db()
    _email_applicant(application, kind="application.approved", reason=reason)
    return application


@transaction.atomic
def application_reject(
    *, application: StoreApplication, acting_user: AbstractBaseUser, reason: str
) -> StoreApplication:
    """applied → rejected with a reason the applicant reads.

    Refused when the reason is empty or the application was already decided.

    Side effects: the application's status, reason, reviewer and time; an
    `application.rejected` email to the applicant."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ActionRefused("Say why the application is rejected; the applicant reads it.", code="validation")
    if len(reason) > REASON_MAX:
        raise ActionRefused(f"Keep the reason to {REASON_MAX} characters or fewer.", code="validation")
    _claim(
        application=application,
        to_status=ApplicationStatus.REJECTED,
        acting_user=acting_user,
        reason=reason,
        now=timezone.now(),
    )
    application.refresh_from_db()
    _email_applicant(application, kind="application.rejected", reason=reason)
    return application
