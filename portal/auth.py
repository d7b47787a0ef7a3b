"""Logging in by username whatever its case: an invited person's username is their email as it
was typed in the invitation, and nobody remembers which letters were capitals. Failed attempts
are counted for the username whatever its case too, so typing it in another case does not
start a new count towards the lockout (django-axes, AXES_USERNAME_CALLABLE)."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest


def stored_username(typed: str) -> str:
    """The username of the account `typed` names in any case; `typed` itself when an account
    has exactly that username, or when none or several (differing only by case) match."""
    User = get_user_model()
    field = User.USERNAME_FIELD
    matches = list(User._default_manager.filter(**{f"{field}__iexact": typed}).values_list(field, flat=True)[:3])
    if typed in matches or len(matches) != 1:
        return typed
    return matches[0]


class AnyCaseUsername:
    """Mixed into a log-in form: authenticates the stored_username of what was typed (the page
    still shows what was typed)."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username:
            self.cleaned_data["username"] = stored_username(username)
        return super().clean()


class AnyCaseLoginForm(AnyCaseUsername, AuthenticationForm):
    """The portal's log-in page."""

    # Django's says "both fields may be case-sensitive": here the username is not.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct username and password. The password is case-sensitive; the "
        "username is not.",
    }


class AnyCaseAdminLoginForm(AnyCaseUsername, AdminAuthenticationForm):
    """The admin's log-in page (staff only, as Django's)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": "Please enter the correct username and password for a staff account. The password is "
        "case-sensitive; the username is not.",
    }


def lockout_username(username: str | None) -> str | None:
    """The name failed attempts are counted under: the username in lower case."""
    return username.casefold() if isinstance(username, str) else username


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the typed username (from the credentials, else the form) as
    lockout_username counts it."""
    if credentials:
        return lockout_username(credentials.get("username"))
    return lockout_username(getattr(request, "data", request.POST).get("username"))
