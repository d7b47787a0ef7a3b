"""Password reset forms: Django's PasswordResetForm, with its email sent through our outbox.

Django finds the accounts (active, with a usable password, email matching case-insensitively) and
builds the token; `send_mail` here writes one `account.password_reset` outbox row per account
instead of sending directly, so the email has text and HTML parts, is retried like every other
message, and its body (a credential) is hidden in the outbox admin. An address with no account
gets no row and the same answer, so the page tells nobody who has an account."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.notifications.models import Channel
from portal.notifications.services import Recipient, notify

EMAIL_MAX = 254


def _focus_first_error(form: forms.Form) -> None:
    """After a failed submit, the first field with an error takes the focus (htmx also honours
    `autofocus` in swapped content), so a keyboard user lands where the fix goes."""
    for name in form.fields:
        if name in form.errors:
            form.fields[name].widget.attrs["autofocus"] = True
            return


def reset_valid_hours() -> int:
    return max(settings.PASSWORD_RESET_TIMEOUT // 3600, 1)


class OutboxPasswordResetForm(PasswordResetForm):
    email = forms.EmailField(
        label="Email address",
        max_length=EMAIL_MAX,
        help_text="The address your Mallrun account uses: we email a link to choose a new password.",
        error_messages={
            "required": "Enter the email address of your account.",
            "invalid": "Enter a valid email address, like name@example.com.",
            "max_length": f"Keep the email address to {EMAIL_MAX} characters or fewer.",
            "null_characters_not_allowed": "Enter a valid email address, like name@example.com.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email", "maxlength": EMAIL_MAX, "inputmode": "email"}),
    )

    def full_clean(self) -> None:
        super().full_clean()
        _focus_first_error(self)

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ) -> None:
        """Writes the reset email to the outbox instead of sending it. The link is absolute on
        PORTAL_BASE_URL (like invitations), not on the request's Host header, which a client
        chooses. The dedupe key carries a time, never the token: operators can read keys."""
        user = context["user"]
        path = reverse("password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]})
        with transaction.atomic():
            notify(
                recipients=[Recipient(user=user, email=to_email)],
                channels=[Channel.EMAIL],
                kind="account.password_reset",
                context={
                    "full_name": user.get_full_name(),
                    "username": user.get_username(),
                    "link": f"{settings.PORTAL_BASE_URL}{path}",
                    "valid_hours": reset_valid_hours(),
                },
                dedupe_key=f"account.password_reset:{user.pk}:{timezone.now().isoformat()}",
            )


class ResetSetPasswordForm(SetPasswordForm):
    """Django's SetPasswordForm (validators, both fields must match) with plainer messages."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].error_messages["required"] = "Enter a new password."
        self.fields["new_password2"].error_messages["required"] = "Enter the new password again."
        self.fields["new_password2"].help_text = "The same password again, so a typo cannot lock you out."

    # The form's field names, not passwords.
    CHOSEN, CONFIRMED = "new_password1", "new_password2"  # noqa: S105

    def validate_password_for_user(self, user, password_field_name: str = CONFIRMED) -> None:
        # The validators judge the password itself ("too similar to the username"): say so at the
        # field where it is chosen, not at its confirmation.
        if password_field_name == self.CONFIRMED and {self.CHOSEN, self.CONFIRMED} <= self.cleaned_data.keys():
            password_field_name = self.CHOSEN
        super().validate_password_for_user(user, password_field_name)

    def full_clean(self) -> None:
        super().full_clean()
        _focus_first_error(self)


class ChangePasswordForm(PasswordChangeForm, ResetSetPasswordForm):
    """Django's PasswordChangeForm (the current password first, then as ResetSetPasswordForm)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = "Current password"
        self.fields["old_password"].error_messages["required"] = "Enter your current password."
