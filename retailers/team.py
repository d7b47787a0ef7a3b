"""A store's team, managed by its store managers on /store/team: invite (retailers.invitations),
change role, deactivate. Deactivating ends the person's sessions at once."""

from importlib import import_module

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from portal.errors import ActionRefused
from portal.sessions import SessionStore as UserSessionStore
from retailers.access import SESSION_STORE_KEY
from retailers.invitations import invite_to_store
from retailers.models import StaffRole, Store, StoreMembership
from retailers.services import _record_store_event


def team_member_list(*, store: Store) -> list[StoreMembership]:
    """Everyone who is or was on the store's team: active first, managers first, then by name.
    Each says whether the person also works at another seller's store (`other_seller`): their
    last log-in is not this store's business then."""
    other_seller = StoreMembership.objects.filter(user=OuterRef("user"), is_active=True).exclude(
        store__seller_id=store.seller_id
    )
    return list(
        StoreMembership.objects.filter(store=store)
        .annotate(other_seller=Exists(other_seller))
        .select_related("user")
        .order_by("-is_active", "-role", "user__first_name", "user__last_name", "user__username")
    )


def _label(membership: StoreMembership) -> str:
    user = membership.user
    return user.get_full_name() or user.get_username()


def _lock(store: Store, membership_id: int) -> StoreMembership:
    # Locks the store's memberships so two managers demoting each other at the same moment
    # cannot leave the store without one.
    rows = {
        row.pk: row for row in StoreMembership.objects.select_for_update().filter(store=store).select_related("user")
    }
    membership = rows.get(membership_id)
    if membership is None:
        raise ActionRefused("That person is not on this store's team.", code="not-found")
    return membership


def _other_active_managers(store: Store, membership: StoreMembership) -> int:
    # Only managers who can log in count: an invited manager who has not set a password yet
    # (perhaps at a mistyped address) would leave the store with nobody to run it.
    return (
        StoreMembership.objects.filter(store=store, role=StaffRole.MANAGER, is_active=True, user__is_active=True)
        .exclude(pk=membership.pk)
        .exclude(user__password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .exclude(user__password="")
        .count()
    )


@transaction.atomic
def team_invite(
    *, store: Store, email: str, role: str, acting_user: AbstractBaseUser, full_name: str = ""
) -> StoreMembership:
    """Invites a person by email (see `invite_to_store` for the email and its side effects), or
    brings back a deactivated member, or sends a new set-password link to a member who never set
    a password (their link ran out or got lost: the expired-link page sends them back to whoever
    invited them, and a password reset skips accounts without a password). Someone already active
    on the team with a password is refused. A role change goes through `team_change_role`, which
    keeps the last manager. Sets `membership.before`: their (role, active) here before, or None."""
    address = (email or "").strip()
    theirs = StoreMembership.objects.filter(store=store).filter(
        Q(user__email__iexact=address) | Q(user__username__iexact=address)
    )
    before = theirs.values_list("role", "is_active").first() if address else None
    current = theirs.filter(is_active=True).select_related("user").first()
    if address and current is not None:
        if current.user.has_usable_password():
            raise ActionRefused(
                f"{_label(current)} is already on the team; change their role in the list below.",
                code="already-member",
            )
        team_change_role(store=store, membership_id=current.pk, role=role, acting_user=acting_user)
    membership = invite_to_store(store=store, email=email, role=role, invited_by=acting_user, full_name=full_name)
    membership.before = before  # (role, active) before this invitation, None for someone new here
    return membership


@transaction.atomic
def team_change_role(*, store: Store, membership_id: int, role: str, acting_user: AbstractBaseUser) -> StoreMembership:
    """Makes a team member an associate or a store manager. The last active manager stays one.

    Side effects: StoreMembership.role; one `store.staff_role_changed` event.
    """
    if role not in StaffRole.values:
        raise ActionRefused("Choose a role: associate or store manager.", code="validation")
    membership = _lock(store, membership_id)
    if membership.role == role:
        return membership
    if membership.role == StaffRole.MANAGER and membership.is_active and not _other_active_managers(store, membership):
        raise ActionRefused(
            f"{_label(membership)} is the store's only active manager: make someone else a manager first.",
            code="last-manager",
        )
    previous = membership.role
    StoreMembership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    _record_store_event(
        store=store,
        type="store.staff_role_changed",
        acting_user=acting_user,
        at=timezone.now(),
        data={"user_id": membership.user_id, "name": _label(membership), "from": previous, "to": role},
    )
    return membership


def end_sessions_of(user: AbstractBaseUser, *, at_store: Store | None = None) -> int:
    """Logs `user` out everywhere (table and cache, see portal.sessions.SessionStore.end_all_of),
    or, given `at_store`, out of the sessions working at that store (or at no store yet): their
    sessions at their other stores stay. Returns how many sessions it ended. An engine whose
    rows do not carry the user id (a cache-only one cannot even list its sessions) is refused
    rather than leave sessions alive."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store_class, UserSessionStore):
        raise ImproperlyConfigured(
            f"Ending a person's sessions needs SESSION_ENGINE = 'portal.sessions' (sessions that carry"
            f" the user id), not '{settings.SESSION_ENGINE}'."
        )
    if at_store is None:
        return store_class.end_all_of(user.pk)
    return store_class.end_all_of(user.pk, keep=lambda data: data.get(SESSION_STORE_KEY) not in {None, at_store.pk})


def works_elsewhere(user: AbstractBaseUser, *, store: Store) -> bool:
    """Whether the person has work in Mallrun beyond this store: another active store
    membership, a driver account, or the admin."""
    from drivers.models import Driver  # the drivers app builds on this one

    return (
        user.is_staff
        or StoreMembership.objects.filter(user=user, is_active=True).exclude(store=store).exists()
        or Driver.objects.filter(user=user).exists()
    )


@transaction.atomic
def team_deactivate(*, store: Store, membership_id: int, acting_user: AbstractBaseUser) -> StoreMembership:
    """Takes a person off the store's team: the membership becomes inactive and all their sessions
    end at once (they work on shared counter tablets). Refused for the last active manager,
    including a manager deactivating themself.

    Side effects: StoreMembership.is_active; one `store.staff_deactivated` event; every session
    of the person deleted (last, so a refusal above leaves them logged in), or, for a person who
    also works elsewhere (another store, perhaps another seller's; driving; the admin), only
    their sessions at this store: this store's manager does not log them out of other work.
    Sets `membership.logged_out_everywhere`.
    """
    membership = _lock(store, membership_id)
    if not membership.is_active:
        raise ActionRefused(f"{_label(membership)} is already deactivated.", code="illegal-transition")
    if membership.role == StaffRole.MANAGER and not _other_active_managers(store, membership):
        raise ActionRefused(
            f"{_label(membership)} is the store's only active manager: make someone else a manager first.",
            code="last-manager",
        )
    StoreMembership.objects.filter(pk=membership.pk, is_active=True).update(is_active=False)
    membership.is_active = False
    _record_store_event(
        store=store,
        type="store.staff_deactivated",
        acting_user=acting_user,
        at=timezone.now(),
        data={"user_id": membership.user_id, "name": _label(membership), "role": membership.role},
    )
    membership.logged_out_everywhere = not works_elsewhere(membership.user, store=store)
    end_sessions_of(membership.user, at_store=None if membership.logged_out_everywhere else store)
    return membership
