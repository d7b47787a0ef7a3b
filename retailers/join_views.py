"""Public onboarding pages: the store application (/join/) and the invited person's set-password
page (/accounts/invite/<uidb64>/<token>/)."""

from django.contrib.auth.views import PasswordResetConfirmView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_http_methods

from retailers.access import SESSION_STORE_KEY
from retailers.invitations import invitation_token_generator, landing_path_for


class InviteAcceptView(PasswordResetConfirmView):
    """Django's set-password flow with the invitation token: the token moves from the URL into
    the session before the form shows (so it never leaks through a Referer), Django's
    SetPasswordForm applies the password validators, and a valid password logs the person in.
    A bad, expired or used link renders a clear page (200), never an error."""

    template_name = "registration/invite_set_password.html"
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
