"""Password reset for anyone with a Mallrun account (store staff, drivers, operators): Django's
four views with our templates, the email through the outbox (portal/accounts_forms.py) and a rate
limit per client address and per email address, counted the same whether or not an account has
that address, so neither the answer nor the limit tells anyone who has an account."""

import hashlib

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django_htmx.http import HttpResponseClientRedirect

from portal.accounts_forms import ChangePasswordForm, OutboxPasswordResetForm, ResetSetPasswordForm, reset_valid_hours
from portal.auth import lockout_username
from portal.counters import count_in_window
from portal.security import client_ip

FORM_TEMPLATE = "registration/password_reset_form.html"
WINDOW_SECONDS = 3600
ADDRESS_LIMIT_MESSAGE = (
    "Too many password reset requests came from your network in the last hour. Nothing was sent: "
    "please try again in an hour, or ask your store manager or the program team for help."
)
EMAIL_LIMIT_MESSAGE = (
    "We already handled several requests for this email address in the last hour. Nothing more was "
    "sent: look for our email in your inbox and spam folder, or try again in an hour."
)


def _ip_key(request: HttpRequest) -> str:
    return f"password-reset-rate:ip:{client_ip(request)}"


def _email_key(email: str) -> str:
    # Hashed: any length or character typed makes a short, safe cache key.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"password-reset-rate:email:{digest}"


class PasswordResetView(auth_views.PasswordResetView):
    """Asks for the account's email address. A valid address (with or without an account) goes
    to the "check your email" page; the email itself is an outbox row written only for active
    accounts with a usable password. Garbage is a form error (422); over a limit, 429 with a
    message and nothing written."""

    template_name = FORM_TEMPLATE
    form_class = OutboxPasswordResetForm
    success_url = reverse_lazy("password_reset_done")
    http_method_names = ["get", "post"]

    def _render(self, form: OutboxPasswordResetForm, *, status: int = 200, refused: str = "") -> HttpResponse:
        template = f"{FORM_TEMPLATE}#reset-form" if self.request.htmx else FORM_TEMPLATE
        # htmx swaps 422 responses (base.html's responseHandling) and would drop a 429.
        if self.request.htmx and status != 200:
            status = 422
        return render(self.request, template, {"form": form, "refused": refused}, status=status)

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self._render(self.get_form())

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        form = self.get_form()
        if cache.get(_ip_key(request), 0) >= settings.PASSWORD_RESET_RATE_LIMIT_PER_HOUR:
            return self._render(form, status=429, refused=ADDRESS_LIMIT_MESSAGE)
        if not form.is_valid():
            return self._render(form, status=422)
        if count_in_window(_ip_key(request), seconds=WINDOW_SECONDS) > settings.PASSWORD_RESET_RATE_LIMIT_PER_HOUR:
            return self._render(form, status=429, refused=ADDRESS_LIMIT_MESSAGE)
        email_key = _email_key(form.cleaned_data["email"])
        if count_in_window(email_key, seconds=WINDOW_SECONDS) > settings.PASSWORD_RESET_RATE_LIMIT_PER_EMAIL:
            return self._render(form, status=429, refused=EMAIL_LIMIT_MESSAGE)
        with transaction.atomic():  # one email per account sharing the address: all rows or none
            response = self.form_valid(form)
        return HttpResponseClientRedirect(response.url) if request.htmx else response


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"
    http_method_names = ["get"]

    def get_context_data(self, **kwargs) -> dict:
        return super().get_context_data(**kwargs) | {"valid_hours": reset_valid_hours()}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's confirm view: the token moves from the URL into the session before the form
    shows (so it never leaks through a Referer), SetPasswordForm applies the password
    validators, and the new password invalidates the link. A bad, expired or used link renders
    a clear page (200), never an error."""

    template_name = "registration/password_reset_confirm.html"
    form_class = ResetSetPasswordForm
    success_url = reverse_lazy("password_reset_complete")
    http_method_names = ["get", "post"]

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        # Whoever proved they own the account's email may log in at once, even if failed
        # attempts had locked the username out.
        axes_reset(username=lockout_username(form.user.get_username()))
        return response

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context["title"] = "Choose a new password" if context.get("validlink") else "This link does not work"
        context["valid_hours"] = reset_valid_hours()
        return context


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
    http_method_names = ["get"]


class PasswordChangeView(auth_views.PasswordChangeView):
    """Anyone logged in changes their password by giving the current one (Django's view: the
    session stays logged in, other sessions of the account end). Back home, with a message."""

    template_name = "registration/password_change_form.html"
    form_class = ChangePasswordForm
    success_url = reverse_lazy("home")
    http_method_names = ["get", "post"]

    def form_valid(self, form: ChangePasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password is changed.")
        return response
