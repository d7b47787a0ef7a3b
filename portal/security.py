"""The security log: every login, failed login, lockout and refused access, one line each; and
the one rule for the client's address that the log, the rate limits and log-in throttling share."""

import ipaddress
import logging

from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.template import loader

log = logging.getLogger("mallrun.security")


def _ip_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request: HttpRequest | None) -> str:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT = N > 0 proxies in front
    the Nth X-Forwarded-For entry from the right, the address the outermost trusted proxy saw.
    Entries further left were written by the client and can say anything, so they are never
    read. A header with fewer than N entries or a picked entry that is not an IP address falls
    back to REMOTE_ADDR (the nearest proxy: one shared limit, never a forged one). "-" when
    there is no address at all."""
    if request is None:
        return "-"
    remote_addr = request.META.get("REMOTE_ADDR") or "-"
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote_addr
    entries = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(entries) < count:
        return remote_addr
    return _ip_or_none(entries[-count]) or remote_addr


def axes_client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: client_ip, so a lockout hits the address the rate limits and
    the log see; None instead of "-" or any other non-address, which AccessAttempt's
    GenericIPAddressField (inet on PostgreSQL) would refuse with an error."""
    return _ip_or_none(client_ip(request))


@receiver(user_logged_in)
def _log_login(sender: object, request: HttpRequest, user: object, **kwargs: object) -> None:
    log.info("login user=%s ip=%s", user, client_ip(request))


@receiver(user_logged_out)
def _log_logout(sender: object, request: HttpRequest, user: object, **kwargs: object) -> None:
    log.info("logout user=%s ip=%s", user, client_ip(request))


@receiver(user_login_failed)
def _log_login_failed(sender: object, credentials: dict, request: HttpRequest | None = None, **kwargs: object) -> None:
    log.warning("login-failed username=%s ip=%s", credentials.get("username", "-"), client_ip(request))


def log_refused(request: HttpRequest, what: str, status: int) -> None:
    """Called by the access helpers whenever a request is refused (404 for another tenant's
    data, 403 for a read-only role)."""
    log.warning(
        "refused status=%s user=%s ip=%s path=%s what=%s",
        status,
        getattr(request, "user", "-"),
        client_ip(request),
        request.path,
        what,
    )


@receiver(user_locked_out)
def _log_locked_out(
    sender: object, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs
) -> None:
    log.warning("locked-out username=%s ip=%s", username or "-", ip_address or "-")


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: dict) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the locked-out page with the wait in plain minutes."""
    cool_off = get_cool_off(request)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    context = {"cooloff_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: logs the refusal and answers with a page a person understands."""
    log_refused(request, f"csrf:{reason}", 403)
    template = loader.get_template("403_csrf.html")
    return HttpResponseForbidden(template.render({}, request))
