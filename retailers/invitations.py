"""Staff invitations: `invite_to_store` adds a person to a store and emails them, through the
outbox, either a one-time set-password link (a new account) or a "you were added" note with a
login link (an account that already has a password). Used by application approval (the
applicant becomes the store's manager) and by the store team page.

The set-password link is built on Django's token machinery: `InvitationTokenGenerator` hashes
the user's password hash and last login, so setting the password (which also logs the person in)
invalidates the link, and its timestamp makes it expire after INVITATION_VALID_HOURS."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from portal.actors import actor_label_for
from portal.errors import ActionRefused
from portal.notifications.models import Channel
from portal.notifications.services import Recipient, notify
from retailers.models import StaffRole, Store, StoreEvent, StoreMembership, StoreStatus

INVITATION_VALID_HOURS = 72
# The address becomes the person's login name (User.username, 150 characters), so an address
# longer than that, though valid, is refused here rather than fail in the database.
EMAIL_MAX = 150
FULL_NAME_MAX = 150


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    """A set-password token for invited staff: its own salt (a password-reset token is not an
    invitation and the other way round) and its own lifetime, independent of
    PASSWORD_RESET_TIMEOUT."""

    key_salt = "mallrun.retailers.invitations.InvitationTokenGenerator"
    valid_seconds = INVITATION_VALID_HOURS * 3600

    def check_token(self, user, token) -> bool:
        if not (user and token) or not isinstance(token, str):
            return False
        parts = token.split("-")
        if len(parts) != 2:
            return False
        try:
            timestamp = base36_to_int(parts[0])
        except ValueError:
            return False
        age = self._num_seconds(self._now()) - timestamp
        if age < 0 or age > self.valid_seconds:
            return False
        return any(
            constant_time_compare(self._make_token_with_timestamp(user, timestamp, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        )


invitation_token_generator = InvitationTokenGenerator()


def invitation_path(user: AbstractBaseUser) -> str:
    """The site-relative set-password link for `user`, valid from now for INVITATION_VALID_HOURS."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("invite-accept", kwargs={"uidb64": uidb64, "token": invitation_token_generator.make_token(user)})


def _absolute(path: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{path}"


def _clean_email(email: str) -> str:
    email = (email or "").strip()
    if len(email) > EMAIL_MAX:
        raise ActionRefused(
            f"Keep the email address to {EMAIL_MAX} characters or fewer: it is the person's login name.",
            code="validation",
        )
    try:
        validate_email(email)
    except ValidationError:
        raise ActionRefused("Enter a valid email address, like name@example.com.", code="validation") from None
    # The domain part is case-insensitive; the local part is kept as typed.
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def _find_or_create_user(*, email: str, full_name: str) -> tuple[AbstractBaseUser, bool]:
    User = get_user_model()
    user = User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).order_by("pk").first()
    if user is not None:
        return user, False
    first, _, last = full_name.partition(" ")
    user = User(username=email, email=email, first_name=first[:150], last_name=last[:150])
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the same person invited twice at once: the other invitation made the account
        return User.objects.get(username=email), False
    return user, True


@transaction.atomic
def invite_to_store(
    *, store: Store, email: str, role: str, invited_by: AbstractBaseUser | None, full_name: str = ""
) -> StoreMembership:
    """Makes the person with `email` a member of `store` with `role` and emails them.

    Finds the user by email (or username equal to the email), or creates one with username =
    email and an unusable password. Creates the membership, or reactivates it with the new role.
    A person without a usable password gets the set-password link (valid 72 hours, usable
    once); a person with a password gets a "you were added to <store>" email with a login link.

    Refused (ActionRefused, nothing written) for an invalid email, an unknown role, a suspended or
    rejected store, or a disabled account.

    Side effects: maybe a User; a StoreMembership created or updated; one `store.staff_invited`
    StoreEvent; one outbox email (kind `store.invitation` or `store.added`).
    """
    email = _clean_email(email)
    full_name = " ".join((full_name or "").split())[:FULL_NAME_MAX]
    if role not in StaffRole.values:
        raise ActionRefused("Choose a role: associate or store manager.", code="validation")
    if store.status in {StoreStatus.SUSPENDED, StoreStatus.REJECTED}:
        raise ActionRefused(
            f"{store.name} is {store.get_status_display().lower()}: nobody can be invited to it.",
            code="illegal-transition",
        )
    user, created = _find_or_create_user(email=email, full_name=full_name)
    if not user.is_active:
        raise ActionRefused(
            f"The account {user.get_username()} is disabled; ask a program operator to enable it first.",
            code="refused",
        )
    membership, membership_created = StoreMembership.objects.get_or_create(
        user=user, store=store, defaults={"role": role, "is_active": True}
    )
    if not membership_created and (membership.role != role or not membership.is_active):
        membership.role = role
        membership.is_active = True
        membership.save(update_fields=["role", "is_active"])
    now = timezone.now()
    StoreEvent.objects.create(
        store=store,
        type="store.staff_invited",
        actor=invited_by if invited_by is not None and invited_by.is_authenticated else None,
        actor_label=actor_label_for(invited_by),
        at=now,
        data={"email": email, "role": role, "user_id": user.pk, "new_account": created},
    )
    needs_password = not user.has_usable_password()
    context = {
        "store": store.name,
        "mall": store.mall.name,
        "role": StaffRole(role).label.lower(),
        "invited_by": actor_label_for(invited_by, fallback="The Mallrun team"),
        "full_name": user.get_full_name() or full_name,
        "username": user.get_username(),
        "valid_hours": INVITATION_VALID_HOURS,
        "link": _absolute(invitation_path(user) if needs_password else f"{reverse('login')}?next={reverse('home')}"),
    }
    notify(
        recipients=[Recipient(user=user, email=user.email or email)],
        channels=[Channel.EMAIL],
        kind="store.invitation" if needs_password else "store.added",
        context=context,
        dedupe_key=f"store.invitation:{membership.pk}:{now.isoformat()}",
    )
    return membership


def landing_path_for(user: AbstractBaseUser) -> tuple[str, int | None]:
    """Where a person goes after setting their password: the onboarding checklist of a store they
    help set up (with that store's id, to make it the current store), else the store pages."""
    onboarding = (
        StoreMembership.objects.filter(user=user, is_active=True, store__status=StoreStatus.ONBOARDING)
        .order_by("-role", "-created_at")
        .values_list("store_id", flat=True)
        .first()
    )
    if onboarding is not None:
        try:
            return reverse("store:onboarding"), onboarding
        except NoReverseMatch:  # the checklist page is built alongside; its path is fixed
            return "/store/onboarding", onboarding
    return reverse("store:board"), None
