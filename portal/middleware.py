import logging
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, resolve_url
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect

from portal.security import client_ip

# Requests a page makes by itself (board polling) are not a person acting, so they neither keep
# an idle session alive nor write the session.
POLL_HEADER = "HTTP_X_MALLRUN_POLL"
_TOUCH_EVERY_SECONDS = 60
log = logging.getLogger("mallrun.security")


class IdleSessionTimeoutMiddleware:
    """Ends a session after SESSION_IDLE_TIMEOUT_SECONDS without a human request. Counter
    tablets are shared, so a forgotten login must not stay open."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get("last_activity", now)
            if now - last > settings.SESSION_IDLE_TIMEOUT_SECONDS:
                log.info("idle-logout user=%s ip=%s idle=%ss", request.user, client_ip(request), now - last)
                logout(request)
                # An htmx request's tab follows it as a whole (HtmxLoginRedirectMiddleware).
                return redirect(f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': request.path, 'idle': 1})}")
            human = POLL_HEADER not in request.META
            if "last_activity" not in request.session or (human and now - last >= _TOUCH_EVERY_SECONDS):
                request.session["last_activity"] = now
        return self.get_response(request)


class HtmxLoginRedirectMiddleware:
    """An htmx request answered with the log-in redirect (its session ended: deactivated from the
    team, logged out in another tab, expired, or idle: it sits outside IdleSessionTimeoutMiddleware)
    sends the whole tab to the log-in page. Otherwise the browser follows the redirect inside the
    request and htmx swaps the log-in page into the region that asked (a settings panel, the
    board)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 302:
            return response
        target = urlsplit(response["Location"])
        # login_required's redirect (it names the page to come back to), not a log-out's.
        if target.path != resolve_url(settings.LOGIN_URL) or "next" not in parse_qs(target.query):
            return response
        page = _page_of(request)
        if request.method != "GET" and page is not None:
            # An action (Accept order, Deliver) whose session had ended: after logging in, come
            # back to the page the button was on, not to the action's address, which often
            # answers only POST (a GET there is a 405).
            query = QueryDict(mutable=True)
            query["next"] = page
            response["Location"] = f"{target.path}?{query.urlencode(safe='/')}"  # as redirect_to_login writes it
        if request.headers.get("HX-Request"):
            return HttpResponseClientRedirect(response["Location"])
        return response


def _page_of(request: HttpRequest) -> str | None:
    """The path of the page a form was sent from: its Referer, when it is this site's."""
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc == request.get_host() and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return None


class PrivatePagesNotStoredMiddleware:
    """Pages for a logged-in person carry customers' names and addresses, gate and pickup codes:
    the browser keeps none of them (Cache-Control: no-store), so Back after logging out, being
    deactivated or giving a route back asks the server again instead of showing the old page.
    A response that set its own caching keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.has_header("Cache-Control"):
            return response
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response
