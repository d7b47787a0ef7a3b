"""Security base: login throttling, CSP, production cookies and HSTS, CSRF with htmx, the idle
session timeout, the security log and the error pages."""

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import permission_denied, server_error

from orders.access import get_order_for_staff
from portal.tests.factories import PASSWORD, make_order, make_staff, make_store, make_user
from retailers.access import require_manager

LOGIN = "/accounts/login/"
SECURITY = "mallrun.security"


def _security_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == SECURITY]


def _fail_login(client: Client, username: str, *, ip: str = "127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": "wrong-password"}, REMOTE_ADDR=ip)


# Login, failed login, lockout


@pytest.mark.django_db
def test_login_success_logs_line_and_redirects_home(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    make_user("dana")
    caplog.set_level(logging.INFO, logger=SECURITY)
    caplog.clear()

    response = client.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert response.status_code == 302
    # "/" sends each person on by role (portal.views.home).
    assert response["Location"] == "/"
    assert _security_lines(caplog) == ["login user=dana ip=127.0.0.1"]


@pytest.mark.django_db
def test_login_failure_shows_form_error_and_logs_line(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    make_user("dana")
    caplog.set_level(logging.INFO, logger=SECURITY)
    caplog.clear()

    response = _fail_login(client, "dana")

    assert response.status_code == 200
    assert (
        "Please enter a correct username and password. The password is case-sensitive; the username is not."
        in response.content.decode()
    )
    assert _security_lines(caplog) == ["login-failed username=dana ip=127.0.0.1"]


@pytest.mark.django_db
def test_login_fifth_failure_locks_username_and_ip_with_clear_message(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    make_user("dana")
    caplog.set_level(logging.INFO, logger=SECURITY)
    caplog.clear()

    responses = [_fail_login(client, "dana") for _ in range(5)]
    right_password = client.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    for locked in (responses[-1], right_password):
        assert locked.status_code == 429
        page = locked.content.decode()
        assert "Too many failed log-in attempts" in page
        assert "After 5 wrong passwords this account is locked on this device for 15 minutes." in page
        assert f'<a href="{reverse("password_reset")}">Forgot your password?</a>' in page
    # Axes reports the lockout before our failed-login receiver runs, so it comes first.
    assert _security_lines(caplog) == [
        *["login-failed username=dana ip=127.0.0.1"] * 4,
        "locked-out username=dana ip=127.0.0.1",
        "login-failed username=dana ip=127.0.0.1",
        "locked-out username=dana ip=127.0.0.1",
        "login-failed username=dana ip=127.0.0.1",
    ]


@pytest.mark.django_db
def test_login_lockout_is_per_username_and_ip(client: Client) -> None:
    make_user("dana")
    make_user("eli")
    for _ in range(5):
        _fail_login(client, "dana")

    same_user_other_ip = client.post(LOGIN, {"username": "dana", "password": PASSWORD}, REMOTE_ADDR="198.51.100.7")
    Client().post(LOGIN, {"username": "eli", "password": PASSWORD})
    other_user_same_ip = Client().post(LOGIN, {"username": "eli", "password": PASSWORD})

    assert same_user_other_ip.status_code == 302
    assert other_user_same_ip.status_code == 302


@pytest.mark.django_db
def test_login_takes_the_username_in_any_case(client: Client) -> None:
    # An invited person's username is their email as the inviter typed it.
    user = make_user("Maria.Lopez@example.com")

    response = client.post(LOGIN, {"username": "maria.lopez@EXAMPLE.com", "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_admin_login_takes_the_username_in_any_case(client: Client) -> None:
    operator = make_user("Olga.Ops@example.com", is_staff=True, is_superuser=True)

    response = client.post("/admin/login/?next=/admin/", {"username": "olga.ops@example.com", "password": PASSWORD})

    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert client.session["_auth_user_id"] == str(operator.pk)


@pytest.mark.django_db
def test_login_exact_username_wins_over_an_account_differing_only_by_case(client: Client) -> None:
    make_user("dana")
    other = make_user("Dana")
    other.set_password("another-password-for-dana")
    other.save()

    exact = client.post(LOGIN, {"username": "Dana", "password": "another-password-for-dana"})
    assert exact.status_code == 302
    assert client.session["_auth_user_id"] == str(other.pk)
    # Neither account is named exactly "DANA": which one is meant is unknown, so none logs in.
    ambiguous = Client().post(LOGIN, {"username": "DANA", "password": PASSWORD})
    assert ambiguous.status_code == 200
    assert "Please enter a correct username and password." in ambiguous.content.decode()


@pytest.mark.django_db
def test_login_lockout_counts_a_username_in_every_case_together(client: Client) -> None:
    make_user("dana")

    responses = [_fail_login(client, typed) for typed in ("dana", "DANA", "Dana", "dAna", "danA")]
    right_password = client.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    assert right_password.status_code == 429


# Content Security Policy


@pytest.mark.django_db
@pytest.mark.parametrize("path", [LOGIN, "/no-such-page/", "/accounts/login/?idle=1"])
def test_csp_header_forbids_inline_code_on_anonymous_pages(client: Client, path: str) -> None:
    response = client.get(path)

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


@pytest.mark.django_db
def test_csp_header_forbids_inline_code_on_staff_pages(client: Client) -> None:
    membership = make_staff(store=make_store())
    client.force_login(membership.user)

    response = client.get("/store/")

    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_templates_have_no_inline_script_or_style() -> None:
    offenders = []
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        text = re.sub(r"\{#.*?#\}", "", template.read_text())
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\sstyle=", text) or "<style" in text:
            offenders.append(str(template.relative_to(settings.BASE_DIR)))

    assert offenders == []


# Production cookies, HSTS and HTTPS redirect (a subprocess with production variables)


def test_production_settings_send_hsts_and_secure_cookies(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env |= {
        "DEBUG": "0",
        "SECRET_KEY": "x" * 20 + "production-like-secret-key-for-this-test-only",
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    code = """
import django, os
os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'
django.setup()
from django.core.management import call_command
call_command('collectstatic', interactive=False, verbosity=0)
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
plain = Client().get('/accounts/login/')
secure = Client().get('/accounts/login/', secure=True)
cookie = secure.cookies['csrftoken']
print(plain.status_code, plain['Location'])
print(secure.status_code, secure['Strict-Transport-Security'])
print('csrftoken', bool(cookie['secure']), cookie['samesite'])
from django.conf import settings
print('session', settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY)
"""

    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "301 https://testserver/accounts/login/",
        "200 max-age=31536000; includeSubDomains; preload",
        "csrftoken True Lax",
        "session True True",
    ]


# CSRF with htmx


def _body_csrf_token(html: str) -> str:
    match = re.search(r"""<body data-hx-headers='\{"X-CSRFToken": "([^"]+)"\}'>""", html)
    assert match, "no data-hx-headers with the CSRF token on <body>"
    return match.group(1)


@pytest.mark.django_db
def test_htmx_post_with_token_from_body_hx_headers_passes() -> None:
    user = make_user("dana")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    token = _body_csrf_token(client.get(LOGIN).content.decode())

    response = client.post("/accounts/logout/", headers={"X-CSRFToken": token, "HX-Request": "true"})

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_htmx_post_without_token_is_refused_with_page_and_log(caplog: pytest.LogCaptureFixture) -> None:
    user = make_user("dana")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(LOGIN)
    caplog.set_level(logging.INFO, logger=SECURITY)
    caplog.clear()

    response = client.post("/accounts/logout/", headers={"HX-Request": "true"})

    assert response.status_code == 403
    assert "This page has expired" in response.content.decode()
    assert client.session["_auth_user_id"] == str(user.pk)
    assert _security_lines(caplog) == [
        "refused status=403 user=dana ip=127.0.0.1 path=/accounts/logout/ what=csrf:CSRF token missing."
    ]


# Idle session timeout


def _age_session(client: Client, seconds: int) -> None:
    session = client.session
    session["last_activity"] = int(time.time()) - seconds
    session.save()


@pytest.mark.django_db
def test_idle_session_is_logged_out_and_redirected_to_login(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    client.force_login(make_user("dana"))
    # The clock stands still, so the logged idle time is exact even on a slow machine.
    with time_machine.travel(time.time(), tick=False):
        client.get(LOGIN)
        _age_session(client, settings.SESSION_IDLE_TIMEOUT_SECONDS + 5)
        caplog.set_level(logging.INFO, logger=SECURITY)
        caplog.clear()

        response = client.get("/store/")
        login_page = client.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fstore%2F&idle=1"
    assert "_auth_user_id" not in client.session
    assert "You were logged out after a while without activity." in login_page.content.decode()
    assert (
        _security_lines(caplog)[0]
        == f"idle-logout user=dana ip=127.0.0.1 idle={settings.SESSION_IDLE_TIMEOUT_SECONDS + 5}s"
    )
    assert _security_lines(caplog)[1] == "logout user=dana ip=127.0.0.1"


@pytest.mark.django_db
def test_idle_session_htmx_request_gets_hx_redirect(client: Client) -> None:
    client.force_login(make_user("dana"))
    client.get(LOGIN)
    _age_session(client, settings.SESSION_IDLE_TIMEOUT_SECONDS + 5)

    response = client.get("/store/", headers={"HX-Request": "true", "X-Mallrun-Poll": "1"})

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fstore%2F&idle=1"
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_htmx_request_without_a_session_gets_hx_redirect_to_login(client: Client) -> None:
    # The session ended another way (deactivated from the team, logged out in another tab):
    # the whole tab goes to the log-in page; a plain request keeps the plain redirect.
    htmx = client.post("/store/settings/", {}, headers={"HX-Request": "true"})
    plain = client.post("/store/settings/", {})

    assert (htmx.status_code, htmx["HX-Redirect"]) == (200, "/accounts/login/?next=/store/settings/")
    assert (plain.status_code, plain["Location"]) == (302, "/accounts/login/?next=/store/settings/")


@pytest.mark.django_db
def test_idle_session_poll_does_not_extend_but_person_does(client: Client) -> None:
    client.force_login(make_user("dana"))
    client.get(LOGIN)
    _age_session(client, 120)
    aged = client.session["last_activity"]

    client.get(LOGIN, headers={"HX-Request": "true", "X-Mallrun-Poll": "1"})
    after_poll = client.session["last_activity"]
    client.get(LOGIN)
    after_person = client.session["last_activity"]

    assert after_poll == aged
    assert time.time() - after_person < 5


@pytest.mark.django_db
def test_idle_session_within_timeout_stays_logged_in(client: Client) -> None:
    client.force_login(make_user("dana"))
    client.get(LOGIN)
    _age_session(client, settings.SESSION_IDLE_TIMEOUT_SECONDS - 30)

    client.get(LOGIN)

    assert client.session["_auth_user_id"]


# Refused access is logged


@pytest.mark.django_db
def test_other_stores_order_is_404_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    other_order = make_order(store=make_store())
    membership = make_staff(store=make_store(), user=make_user("dana"))
    request = RequestFactory().get(f"/store/orders/{other_order.pk}/", REMOTE_ADDR="127.0.0.1")
    request.user = membership.user
    caplog.set_level(logging.INFO, logger=SECURITY)
    caplog.clear()

    with pytest.raises(Http404):
        get_order_for_staff(request, other_order.pk)

    assert _security_lines(caplog) == [
        f"refused status=404 user=dana ip=127.0.0.1 path=/store/orders/{other_order.pk}/ what=order:{other_order.pk}"
    ]


@pytest.mark.django_db
def test_associate_manager_only_action_is_403_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    membership = make_staff(store=make_store(), user=make_user("dana"))
    request = RequestFactory().post("/store/settings/", REMOTE_ADDR="127.0.0.1")
    request.user = membership.user
    caplog.set_level(logging.INFO, logger=SECURITY)
    caplog.clear()

    with pytest.raises(PermissionDenied):
        require_manager(request, membership)

    assert _security_lines(caplog) == [
        f"refused status=403 user=dana ip=127.0.0.1 path=/store/settings/ what=store:{membership.store_id}:manager-only"
    ]


# Error pages


@pytest.mark.django_db
def test_404_page_is_the_house_template(client: Client) -> None:
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "<title>Not found · Mallrun</title>" in page
    assert "There is nothing here, or it belongs to a store you do not work at." in page


def test_403_page_shows_the_refusal_message() -> None:
    request = RequestFactory().get("/store/settings/")
    request.user = AnonymousUser()

    response = permission_denied(request, PermissionDenied("Only a store manager can change this."))

    assert response.status_code == 403
    page = response.content.decode()
    assert "<title>Not allowed · Mallrun</title>" in page
    assert "Only a store manager can change this." in page


def test_500_page_renders_without_a_request_context() -> None:
    response = server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    page = response.content.decode()
    assert "<title>Something went wrong · Mallrun</title>" in page
    assert "The server could not finish this request." in page


@pytest.mark.django_db
def test_action_sent_after_the_session_ended_comes_back_to_its_page_after_log_in(client: Client) -> None:
    page = "http://testserver/store/orders/7/"

    plain = client.post("/store/orders/7/accept/", {}, headers={"Referer": page})
    htmx = client.post("/store/orders/7/accept/", {}, headers={"Referer": page, "HX-Request": "true"})
    foreign = client.post("/store/orders/7/accept/", {}, headers={"Referer": "https://elsewhere.example/x"})

    assert (plain.status_code, plain["Location"]) == (302, "/accounts/login/?next=/store/orders/7/")
    assert htmx["HX-Redirect"] == "/accounts/login/?next=/store/orders/7/"
    # Another site's page is not one to come back to: the action's own address stays.
    assert foreign["Location"] == "/accounts/login/?next=/store/orders/7/accept/"
