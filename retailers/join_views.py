"""Public onboarding pages: the store application (/join/) and the invited person's set-password
page (/accounts/invite/<uidb64>/<token>/)."""

from django.conf import settings
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from portal.accounts_forms import ResetSetPasswordForm
from portal.counters import count_in_window
from portal.security import client_ip
from retailers.access import SESSION_STORE_KEY
from retailers.applications import application_submit
from retailers.invitations import invitation_token_generator, landing_path_for
from retailers.join_forms import JoinForm

JOIN_TEMPLATE = "join/apply.html"
JOIN_WINDOW_SECONDS = 3600
SESSION_REFERENCE_KEY = "join_reference"
RATE_LIMIT_MESSAGE = (
    "Too many applications were sent from your network in the last hour. Nothing was saved: "
    "please try again in an hour, or email the program team if you are applying for many stores."
)


def _join_limit() -> int:
    return settings.JOIN_RATE_LIMIT_PER_HOUR


def _rate_key(request: HttpRequest) -> str:
    return f"join-rate:{client_ip(request)}"


def _count_submission(request: HttpRequest) -> int:
    """Counts one submission from the client's address in a one-hour window that starts with the
    first; returns the count including this one."""
    return count_in_window(_rate_key(request), seconds=JOIN_WINDOW_SECONDS)


def _render_join(request: HttpRequest, form: JoinForm, *, status: int = 200, refused: str = "") -> HttpResponse:
    template = f"{JOIN_TEMPLATE}#join-form" if request.htmx else JOIN_TEMPLATE
    # htmx swaps 422 responses (base.html's responseHandling) and would drop a 429.
    if request.htmx and status != 200:
        status = 422
    return render(request, template, {"form": form, "refused": refused}, status=status)


def _done(request: HttpRequest) -> HttpResponse:
    url = reverse("join-done")
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    """The public store application. Spam protection: a honeypot field (a filled one is thanked
    and dropped) and at most JOIN_RATE_LIMIT_PER_HOUR applications per client address per hour
    (429 with a clear message, nothing written)."""
    if request.method == "GET":
        return _render_join(request, JoinForm())
    form = JoinForm(request.POST)
    if cache.get(_rate_key(request), 0) >= _join_limit():
        return _render_join(request, form, status=429, refused=RATE_LIMIT_MESSAGE)
    if form.is_spam:  # thanked like a person, so the bot learns nothing; counted, never saved
        _count_submission(request)
        return _done(request)
    if not form.is_valid():
        return _render_join(request, form, status=422)
    if _count_submission(request) > _join_limit():
        return _render_join(request, form, status=429, refused=RATE_LIMIT_MESSAGE)
    application = application_submit(**form.service_arguments())
    request.session[SESSION_REFERENCE_KEY] = application.reference
    return _done(request)


@require_GET
def join_done(request: HttpRequest) -> HttpResponse:
    return render(request, "join/done.html", {"reference": request.session.pop(SESSION_REFERENCE_KEY, "")})


class InviteAcceptView(PasswordResetConfirmView):
    """Django's set-password flow with the invitation token: the token moves from the URL into
    the session before the form shows (so it never leaks through a Referer), Django's
    SetPasswordForm applies the password validators, and a valid password logs the person in.
    A bad, expired or used link renders a clear page (200), never an error."""

    template_name = "registration/invite_set_password.html"
    # The reset page's form: plain messages, the first field to fix takes the focus.
    form_class = ResetSetPasswordForm
    token_generator = invitation_token_generator
    reset_url_token = "set-password"  # noqa: S105 - a URL segment, not a secret
    post_reset_login = True
    # Two backends are configured (axes first); the person just proved who they are.
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"

    def form_valid(self, form) -> HttpResponse:
        super().form_valid(form)
        path, store_id = landing_path_for(form.user)
        if store_id is not None:
            self.request.session[SESSION_STORE_KEY] = store_id
        return HttpResponseRedirect(path)

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context["title"] = "Choose your password" if context.get("validlink") else "This link does not work"
        return context


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    return InviteAcceptView.as_view()(request, uidb64=uidb64, token=token)
