"""The client's address behind reverse proxies (TRUSTED_PROXY_COUNT): the rule itself, the
setting, and the same address in log-in throttling (axes), the /join/ and password-reset limits
and the security log, so that people behind one proxy get their own limits and nobody dodges a
limit by writing X-Forwarded-For entries of their own."""

import logging
import os
import time

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.test import Client, RequestFactory, override_settings

from portal.notifications.models import Notification
from portal.security import axes_client_ip, client_ip
from portal.tests.factories import PASSWORD, make_mall, make_market, make_user
from portal.tests.test_settings import _OURS, _manage, _python
from retailers.models import StoreApplication
from retailers.tests.test_join import valid_post

LOGIN = "/accounts/login/"
RESET = "/accounts/password_reset/"
JOIN = "/join/"
SECURITY = "mallrun.security"
PROXY = "10.0.0.2"  # REMOTE_ADDR of every request that came through the proxy
ALICE = "203.0.113.7"
BOB = "198.51.100.8"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _request(forwarded_for: str | None = None, *, remote_addr: str | None = PROXY):
    request = RequestFactory().get("/")
    if remote_addr is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote_addr
    if forwarded_for is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return request


def _behind_proxy(forwarded_for: str) -> Client:
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)


def _security_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == SECURITY]


# The rule


@override_settings(TRUSTED_PROXY_COUNT=0)
def test_client_ip_without_proxies_is_remote_addr_and_ignores_forged_forwarded_for() -> None:
    assert client_ip(_request(BOB, remote_addr=ALICE)) == ALICE


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_client_ip_one_proxy_picks_the_rightmost_entry() -> None:
    assert client_ip(_request(ALICE)) == ALICE


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_client_ip_one_proxy_ignores_forged_entries_on_the_left() -> None:
    assert client_ip(_request(f"192.0.2.1, 192.0.2.2,{BOB}, {ALICE}")) == ALICE


@override_settings(TRUSTED_PROXY_COUNT=2)
def test_client_ip_two_proxies_picks_the_second_entry_from_the_right() -> None:
    # A load balancer appended ALICE, then nginx appended the load balancer's 10.0.0.9.
    assert client_ip(_request(f"{ALICE}, 10.0.0.9")) == ALICE


@override_settings(TRUSTED_PROXY_COUNT=2)
def test_client_ip_two_proxies_ignore_forged_entries_on_the_left() -> None:
    assert client_ip(_request(f"192.0.2.1, {BOB} ,  {ALICE} ,10.0.0.9")) == ALICE


@pytest.mark.parametrize(
    ("count", "forwarded_for"),
    [
        (1, None),  # no header at all
        (1, ""),
        (1, " , "),
        (2, ALICE),  # fewer entries than proxies: the client reached the inner proxy directly
        (3, f"{ALICE}, 10.0.0.9"),
    ],
)
def test_client_ip_too_few_entries_falls_back_to_remote_addr(count: int, forwarded_for: str | None) -> None:
    with override_settings(TRUSTED_PROXY_COUNT=count):
        assert client_ip(_request(forwarded_for)) == PROXY


@pytest.mark.parametrize(
    "forwarded_for",
    [
        "unknown",
        "not-an-ip",
        f"{ALICE}:4711",  # a port, which some proxies add
        "203.0.113.256",
        "203.0.113",
        "[2001:db8::1]",
        f"{ALICE}; rm -rf /",
        f"{ALICE} {BOB}",
        "x" * 500,
        f"{ALICE}, garbage",  # the left entry is fine, the one the proxy wrote is not
    ],
)
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_client_ip_garbage_entry_falls_back_to_remote_addr(forwarded_for: str) -> None:
    assert client_ip(_request(forwarded_for)) == PROXY


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_client_ip_ipv6_entry_is_picked_in_its_short_lower_case_form() -> None:
    assert client_ip(_request("2001:db8::1")) == "2001:db8::1"
    assert client_ip(_request("192.0.2.1, 2001:DB8:0:0:0:0:0:1")) == "2001:db8::1"
    assert client_ip(_request(f"2001:db8::1, {ALICE}", remote_addr="fd00::2")) == ALICE


@override_settings(TRUSTED_PROXY_COUNT=2)
def test_client_ip_ipv6_two_proxies_and_ipv6_fallback() -> None:
    assert client_ip(_request("2001:db8::66, 2001:db8::1, fd00::9", remote_addr="fd00::2")) == "2001:db8::1"
    assert client_ip(_request("2001:db8::1", remote_addr="fd00::2")) == "fd00::2"
    assert client_ip(_request("2001:db8::zz, fd00::9", remote_addr="fd00::2")) == "fd00::2"


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_client_ip_without_request_or_address_is_a_dash() -> None:
    assert client_ip(None) == "-"
    assert client_ip(_request("garbage", remote_addr=None)) == "-"
    assert client_ip(_request("garbage", remote_addr="")) == "-"


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_axes_client_ip_is_client_ip_or_none_when_there_is_no_address() -> None:
    assert axes_client_ip(_request(f"192.0.2.1, {ALICE}")) == ALICE
    assert axes_client_ip(_request("garbage")) == PROXY
    # AccessAttempt.ip_address is inet on PostgreSQL: "-" would be an error there.
    assert axes_client_ip(_request("garbage", remote_addr=None)) is None
    assert axes_client_ip(_request("garbage", remote_addr="")) is None


def test_axes_reads_the_client_address_through_our_rule() -> None:
    assert settings.AXES_CLIENT_IP_CALLABLE == "portal.security.axes_client_ip"


# The setting

_PRINT_COUNT = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; django.setup()\n"
    "from django.conf import settings as s\n"
    "print(s.TRUSTED_PROXY_COUNT)"
)


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*_OURS, "TRUSTED_PROXY_COUNT")}
    return env | {"DEBUG": "1"} | values


def test_trusted_proxy_count_defaults_to_no_proxy() -> None:
    result = _python(_PRINT_COUNT, _env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_trusted_proxy_count_comes_from_the_environment() -> None:
    result = _python(_PRINT_COUNT, _env(TRUSTED_PROXY_COUNT="2"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "ImproperlyConfigured: TRUSTED_PROXY_COUNT=-1 must be 0 (no proxy) or more."),
        ("one", "ImproperlyConfigured: TRUSTED_PROXY_COUNT='one' is not an integer"),
    ],
)
def test_trusted_proxy_count_wrong_value_fails_with_message(value: str, message: str) -> None:
    result = _manage("check", env=_env(TRUSTED_PROXY_COUNT=value))

    assert result.returncode == 1
    assert message in result.stderr


# Log-in throttling (axes)


def _fail_login(client: Client, username: str = "dana"):
    return client.post(LOGIN, {"username": username, "password": "wrong-password"})


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_login_lockout_behind_proxy_is_per_client_not_per_proxy(caplog: pytest.LogCaptureFixture) -> None:
    make_user("dana")
    alice, bob = _behind_proxy(ALICE), _behind_proxy(BOB)
    caplog.set_level(logging.INFO, logger=SECURITY)
    caplog.clear()

    failures = [_fail_login(alice).status_code for _ in range(5)]
    bob_logs_in = bob.post(LOGIN, {"username": "dana", "password": PASSWORD})
    alice_right_password = alice.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert failures == [200, 200, 200, 200, 429]
    assert bob_logs_in.status_code == 302
    assert alice_right_password.status_code == 429
    assert list(AccessAttempt.objects.values_list("ip_address", "failures_since_start")) == [(ALICE, 6)]
    assert _security_lines(caplog) == [
        *[f"login-failed username=dana ip={ALICE}"] * 4,
        f"locked-out username=dana ip={ALICE}",
        f"login-failed username=dana ip={ALICE}",
        f"login user=dana ip={BOB}",
        f"locked-out username=dana ip={ALICE}",
        f"login-failed username=dana ip={ALICE}",
    ]


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_login_lockout_behind_proxy_cannot_be_dodged_with_forged_forwarded_for() -> None:
    make_user("dana")
    # Each attempt claims another address on the left; the proxy appends the real one.
    attempts = [_fail_login(_behind_proxy(f"192.0.2.{n}, {ALICE}")).status_code for n in range(5)]
    forged_right_password = _behind_proxy(f"192.0.2.99, {ALICE}").post(
        LOGIN, {"username": "dana", "password": PASSWORD}
    )

    assert attempts == [200, 200, 200, 200, 429]
    assert forged_right_password.status_code == 429
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [ALICE]


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=0)
def test_login_lockout_without_proxy_setting_ignores_forwarded_for() -> None:
    make_user("dana")
    attempts = [
        _fail_login(Client(REMOTE_ADDR=ALICE, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")).status_code for n in range(5)
    ]

    assert attempts == [200, 200, 200, 200, 429]
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [ALICE]


# /join/


@pytest.fixture
def mall():
    return make_mall(name="Fashion Show", market=make_market(name="Las Vegas"))


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1, JOIN_RATE_LIMIT_PER_HOUR=2)
def test_join_limit_behind_proxy_is_per_client_not_per_proxy(mall) -> None:
    alice, bob = _behind_proxy(ALICE), _behind_proxy(BOB)

    alice_answers = [alice.post(JOIN, valid_post(mall, unit=f"A-{n}")).status_code for n in range(3)]
    bob_answer = bob.post(JOIN, valid_post(mall, unit="B-1")).status_code

    assert alice_answers + [bob_answer] == [302, 302, 429, 302]
    assert sorted(StoreApplication.objects.values_list("unit", flat=True)) == ["A-0", "A-1", "B-1"]


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1, JOIN_RATE_LIMIT_PER_HOUR=2)
def test_join_limit_behind_proxy_cannot_be_dodged_with_forged_forwarded_for(mall) -> None:
    answers = [
        _behind_proxy(f"192.0.2.{n}, {ALICE}").post(JOIN, valid_post(mall, unit=f"A-{n}")).status_code for n in range(4)
    ]

    assert answers == [302, 302, 429, 429]
    assert sorted(StoreApplication.objects.values_list("unit", flat=True)) == ["A-0", "A-1"]


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=0, JOIN_RATE_LIMIT_PER_HOUR=2)
def test_join_limit_without_proxy_setting_ignores_forwarded_for(mall) -> None:
    answers = [
        Client(REMOTE_ADDR=ALICE, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").post(JOIN, valid_post(mall, unit=f"A-{n}"))
        for n in range(3)
    ]

    assert [answer.status_code for answer in answers] == [302, 302, 429]


# Password reset


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1, PASSWORD_RESET_RATE_LIMIT_PER_HOUR=2)
def test_password_reset_limit_behind_proxy_is_per_client_not_per_proxy() -> None:
    for name in ["a", "b", "c", "d"]:
        make_user(name, email=f"{name}@example.com")
    alice, bob = _behind_proxy(ALICE), _behind_proxy(BOB)

    alice_answers = [alice.post(RESET, {"email": f"{name}@example.com"}).status_code for name in ["a", "b", "c"]]
    bob_answer = bob.post(RESET, {"email": "d@example.com"}).status_code

    assert alice_answers + [bob_answer] == [302, 302, 429, 302]
    assert sorted(Notification.objects.values_list("to", flat=True)) == [
        "a@example.com",
        "b@example.com",
        "d@example.com",
    ]


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1, PASSWORD_RESET_RATE_LIMIT_PER_HOUR=2)
def test_password_reset_limit_behind_proxy_cannot_be_dodged_with_forged_forwarded_for() -> None:
    for name in ["a", "b", "c", "d"]:
        make_user(name, email=f"{name}@example.com")

    answers = [
        _behind_proxy(f"192.0.2.{n}, {ALICE}").post(RESET, {"email": f"{name}@example.com"}).status_code
        for n, name in enumerate(["a", "b", "c", "d"])
    ]

    assert answers == [302, 302, 429, 429]
    assert sorted(Notification.objects.values_list("to", flat=True)) == ["a@example.com", "b@example.com"]


# The security log


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_idle_logout_line_names_the_client_behind_the_proxy(caplog: pytest.LogCaptureFixture) -> None:
    client = _behind_proxy(f"192.0.2.1, {ALICE}")
    client.force_login(make_user("dana"))
    with time_machine.travel(time.time(), tick=False):
        client.get(LOGIN)
        session = client.session
        session["last_activity"] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT_SECONDS - 5
        session.save()
        caplog.set_level(logging.INFO, logger=SECURITY)
        caplog.clear()

        response = client.get("/store/")

    assert response.status_code == 302
    assert _security_lines(caplog) == [
        f"idle-logout user=dana ip={ALICE} idle={settings.SESSION_IDLE_TIMEOUT_SECONDS + 5}s",
        f"logout user=dana ip={ALICE}",
    ]
