"""Password reset over HTTP: the email goes through the outbox (text + HTML, a secret kind), the
link sets a new password once, an unknown address gets the same answer and no row, garbage is a
form error, and the rate limits per client address and per email address."""

import datetime as dt
import re

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from portal.notifications import services as outbox
from portal.notifications.kinds import KINDS
from portal.notifications.models import Notification
from portal.tests.factories import PASSWORD, make_user

User = get_user_model()
RESET = "/accounts/password_reset/"
DONE = "/accounts/password_reset/done/"
NEW_PASSWORD = "blue-counter-42-mall"
START = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
SAME_ANSWER = "If an account uses the address you entered, we are emailing it a link to choose a new password now."


@pytest.fixture(autouse=True)
def _fresh_cache_and_base_url(settings):
    settings.PORTAL_BASE_URL = "https://mallrun.example"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def dana():
    return make_user("dana", email="Dana.Ortiz@example.com", first_name="Dana", last_name="Ortiz")


def _link(text: str) -> str:
    match = re.search(r"https://mallrun\.example(/accounts/reset/[^/\s\"]+/[^/\s\"]+/)", text)
    assert match, text
    return match.group(1)


@pytest.mark.django_db
def test_password_reset_whole_flow_outbox_link_new_password_log_in(client, dana, mailoutbox):
    asked = client.post(RESET, {"email": "dana.ortiz@EXAMPLE.com"})

    assert (asked.status_code, asked.url) == (302, DONE)
    assert mailoutbox == []  # nothing sent at request time: the outbox sweeper sends
    done = client.get(DONE)
    assert SAME_ANSWER in done.content.decode()
    row = Notification.objects.get()
    assert (row.kind, row.channel, row.to, row.user, row.subject, row.status) == (
        "account.password_reset",
        "email",
        "Dana.Ortiz@example.com",
        dana,
        "Reset your Mallrun password",
        "pending",
    )
    assert KINDS[row.kind].secret is True
    assert "Your username is dana." in row.body
    assert "The link works once and for 2 hours." in row.body
    link = _link(row.body)
    assert row.dedupe_key.startswith(f"account.password_reset:{dana.pk}:")
    assert link.split("/")[-2] not in row.dedupe_key  # operators can read keys; the token is a credential
    assert _link(row.html_body) == link
    assert '<a href="https://mallrun.example/accounts/reset/' in row.html_body

    assert outbox.send_due() == 1
    assert [(m.subject, m.to) for m in mailoutbox] == [("Reset your Mallrun password", ["Dana.Ortiz@example.com"])]
    assert [mime for _, mime in mailoutbox[0].alternatives] == ["text/html"]

    opened = client.get(link)
    assert opened.status_code == 302
    form_url = opened.url
    assert form_url.endswith("/set-password/")
    form_page = client.get(form_url)
    assert form_page.status_code == 200
    assert "Your username is <strong>dana</strong>." in form_page.content.decode()
    changed = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert (changed.status_code, changed.url) == (302, "/accounts/reset/done/")
    assert "Your password is changed" in client.get(changed.url).content.decode()

    dana.refresh_from_db()
    assert dana.check_password(NEW_PASSWORD) is True
    fresh = Client()
    assert fresh.post("/accounts/login/", {"username": "dana", "password": PASSWORD}).status_code == 200
    logged_in = fresh.post("/accounts/login/", {"username": "dana", "password": NEW_PASSWORD})
    assert logged_in.status_code == 302
    assert fresh.session["_auth_user_id"] == str(dana.pk)


@pytest.mark.django_db
def test_password_reset_used_link_is_refused(client, dana):
    client.post(RESET, {"email": "Dana.Ortiz@example.com"})
    link = _link(Notification.objects.get().body)
    form_url = client.get(link).url
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    again = Client()
    reopened = again.get(link)
    reposted = again.post(link, {"new_password1": "another-pass-99-x", "new_password2": "another-pass-99-x"})

    assert reopened.status_code == 200
    assert "This link does not work" in reopened.content.decode()
    assert "Email me a new link" in reopened.content.decode()
    assert reposted.status_code == 200
    assert "This link does not work" in reposted.content.decode()
    dana.refresh_from_db()
    assert dana.check_password(NEW_PASSWORD) is True


@pytest.mark.django_db
def test_password_reset_link_expires_after_two_hours(client, dana):
    with time_machine.travel(START, tick=False):
        client.post(RESET, {"email": "Dana.Ortiz@example.com"})
    link = _link(Notification.objects.get().body)

    with time_machine.travel(START + dt.timedelta(hours=1, minutes=59), tick=False):
        still_valid = Client().get(link, follow=True)
    with time_machine.travel(START + dt.timedelta(hours=2, seconds=1), tick=False):
        expired = Client().get(link, follow=True)

    assert "Choose a new password" in still_valid.content.decode()
    assert "This link does not work" in expired.content.decode()


@pytest.mark.django_db
def test_password_reset_unknown_address_same_page_and_no_row(client, dana):
    known = client.post(RESET, {"email": "Dana.Ortiz@example.com"})
    unknown = Client().post(RESET, {"email": "nobody@example.com"})

    assert (unknown.status_code, unknown.url) == (known.status_code, known.url) == (302, DONE)
    assert list(Notification.objects.values_list("to", flat=True)) == ["Dana.Ortiz@example.com"]


@pytest.mark.django_db
def test_password_reset_inactive_and_passwordless_accounts_get_nothing(client):
    make_user("gone", email="gone@example.com", is_active=False)
    invited = make_user("invited@example.com", email="invited@example.com")
    invited.set_unusable_password()
    invited.save()

    first = client.post(RESET, {"email": "gone@example.com"})
    second = client.post(RESET, {"email": "invited@example.com"})

    assert [first.url, second.url] == [DONE, DONE]
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_password_reset_every_account_with_the_address_gets_its_own_link(client):
    one = make_user("pat", email="pat@example.com")
    two = make_user("pat-driver", email="PAT@example.com")

    client.post(RESET, {"email": "pat@example.com"})

    rows = list(Notification.objects.order_by("user_id").values_list("user_id", "to"))
    assert rows == [(one.pk, "pat@example.com"), (two.pk, "PAT@example.com")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Enter the email address of your account."),
        ({"email": "   "}, "Enter the email address of your account."),
        ({"email": "dana@"}, "Enter a valid email address, like name@example.com."),
        ({"email": "a@b.c\x00"}, "Enter a valid email address, like name@example.com."),
        ({"email": "x" * 250 + "@example.com"}, "Keep the email address to 254 characters or fewer."),
        ({"email": ["dana@example.com", "<script>"]}, "Enter a valid email address, like name@example.com."),
    ],
    ids=["missing", "blank", "no-domain", "nul-byte", "too-long", "list"],
)
def test_password_reset_garbage_is_a_form_error_never_a_500(client, dana, data, message):
    response = client.post(RESET, data)

    assert response.status_code == 422
    body = response.content.decode()
    assert message in body
    assert "Nothing was sent: correct the email address below." in body
    assert 'aria-invalid="true"' in body
    assert re.search(r'<input type="email" name="email"[^>]* autofocus', body)
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_password_reset_undecodable_bytes_and_json_are_form_errors(client, dana):
    raw = client.post(RESET, b"email=%FF%FE%00", content_type="application/x-www-form-urlencoded")
    as_json = client.post(RESET, {"email": "Dana.Ortiz@example.com"}, content_type="application/json")

    assert (raw.status_code, as_json.status_code) == (422, 422)
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_password_reset_confirm_garbage_link_and_garbage_passwords(client, dana):
    garbage = [
        client.get("/accounts/reset/%FF%00/zzz/"),
        client.get("/accounts/reset/MTIzNDU2Nzg5MDEyMzQ1Njc4OTA/1-2-3/"),
        client.get("/accounts/reset/" + "A" * 600 + "/set-password/"),
        client.post("/accounts/reset/Mw/set-password/", {"new_password1": "x"}),
    ]
    assert [r.status_code for r in garbage] == [200, 200, 200, 200]
    assert all("This link does not work" in r.content.decode() for r in garbage)

    client.post(RESET, {"email": "Dana.Ortiz@example.com"})
    form_url = client.get(_link(Notification.objects.get().body)).url
    mismatch = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": "other-pass-77-q"})
    too_short = client.post(form_url, {"new_password1": "abc", "new_password2": "abc"})
    nul = client.post(form_url, {"new_password1": "a\x00b", "new_password2": "a\x00b"})
    empty = client.post(form_url, {})

    assert [mismatch.status_code, too_short.status_code, nul.status_code] == [200, 200, 200]
    assert "The two password fields didn’t match." in mismatch.content.decode()
    assert re.search(r'name="new_password2"[^>]* autofocus', mismatch.content.decode())
    assert re.search(r'name="new_password1"[^>]* autofocus', empty.content.decode())
    assert "autofocus" not in client.get(form_url).content.decode()
    assert "This password is too short." in too_short.content.decode()
    assert "Your password was not changed: correct the fields below." in nul.content.decode()
    assert empty.status_code == 200
    assert "Enter a new password." in empty.content.decode()
    assert "Enter the new password again." in empty.content.decode()
    dana.refresh_from_db()
    assert dana.check_password(PASSWORD) is True


@pytest.mark.django_db
def test_password_reset_rate_limit_per_client_address(client, settings):
    settings.PASSWORD_RESET_RATE_LIMIT_PER_HOUR = 2
    for name in ["a", "b", "c", "d"]:
        make_user(name, email=f"{name}@example.com")

    answers = [client.post(RESET, {"email": f"{name}@example.com"}).status_code for name in ["a", "b", "c"]]
    other_address = client.post(RESET, {"email": "d@example.com"}, REMOTE_ADDR="203.0.113.9")

    assert answers + [other_address.status_code] == [302, 302, 429, 302]
    third = client.post(RESET, {"email": "c@example.com"})
    assert "Too many password reset requests came from your network in the last hour. Nothing was sent" in (
        third.content.decode()
    )
    sent_to = sorted(Notification.objects.values_list("to", flat=True))
    assert sent_to == ["a@example.com", "b@example.com", "d@example.com"]


@pytest.mark.django_db
def test_password_reset_rate_limit_per_email_counts_unknown_addresses_the_same(client, dana, settings):
    settings.PASSWORD_RESET_RATE_LIMIT_PER_EMAIL = 2
    known = [
        Client(REMOTE_ADDR=f"198.51.100.{n}").post(RESET, {"email": "dana.ortiz@example.com"}).status_code
        for n in range(3)
    ]
    unknown = [
        Client(REMOTE_ADDR=f"198.51.100.{n}").post(RESET, {"email": "nobody@example.com"}).status_code for n in range(3)
    ]

    assert known == unknown == [302, 302, 429]
    refused = client.post(RESET, {"email": "DANA.ORTIZ@example.com"})
    assert "We already handled several requests for this email address in the last hour." in refused.content.decode()
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_password_reset_rate_limit_window_ends_after_an_hour(client, dana, settings):
    # locmem reads the frozen Python clock; Redis keeps its own, which time_machine cannot move.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.PASSWORD_RESET_RATE_LIMIT_PER_EMAIL = 1
    with time_machine.travel(START, tick=False):
        assert client.post(RESET, {"email": "Dana.Ortiz@example.com"}).status_code == 302
    with time_machine.travel(START + dt.timedelta(minutes=59), tick=False):
        assert client.post(RESET, {"email": "Dana.Ortiz@example.com"}).status_code == 429
    with time_machine.travel(START + dt.timedelta(hours=1, seconds=1), tick=False):
        assert client.post(RESET, {"email": "Dana.Ortiz@example.com"}).status_code == 302

    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_password_reset_invalid_posts_do_not_use_up_the_limit(client, dana, settings):
    settings.PASSWORD_RESET_RATE_LIMIT_PER_HOUR = 1
    for _ in range(3):
        client.post(RESET, {"email": "nope"})

    assert client.post(RESET, {"email": "Dana.Ortiz@example.com"}).status_code == 302
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_password_reset_htmx_gets_the_fragment_and_a_client_redirect(client, dana):
    invalid = client.post(RESET, {"email": "nope"}, HTTP_HX_REQUEST="true")
    valid = client.post(RESET, {"email": "Dana.Ortiz@example.com"}, HTTP_HX_REQUEST="true")

    assert invalid.status_code == 422
    assert invalid.content.decode().lstrip().startswith('<form id="reset-form"')
    assert (valid.status_code, valid["HX-Redirect"]) == (200, DONE)
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_password_reset_wrong_methods_are_405(client):
    assert client.put(RESET).status_code == 405
    assert client.post(DONE).status_code == 405
    assert client.post("/accounts/reset/done/").status_code == 405


@pytest.mark.django_db
def test_password_reset_lifts_a_log_in_lockout(client, dana):
    for _ in range(5):
        Client().post("/accounts/login/", {"username": "dana", "password": "wrong-guess"})
    assert AccessAttempt.objects.filter(username="dana").exists()

    client.post(RESET, {"email": "Dana.Ortiz@example.com"})
    form_url = client.get(_link(Notification.objects.get().body)).url
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    logged_in = Client().post("/accounts/login/", {"username": "dana", "password": NEW_PASSWORD})

    assert AccessAttempt.objects.filter(username="dana").exists() is False
    assert logged_in.status_code == 302


@pytest.mark.django_db
def test_login_page_links_to_password_reset_and_join(client):
    body = client.get("/accounts/login/").content.decode()

    assert '<a href="/accounts/password_reset/">Forgot your password?</a>' in body
    assert 'Is your store not on Mallrun yet? <a href="/join/">Apply to join the program</a>' in body


@pytest.mark.django_db
def test_password_reset_outbox_admin_hides_the_link_from_operators(client, dana):
    client.post(RESET, {"email": "Dana.Ortiz@example.com"})
    row = Notification.objects.get()
    token = _link(row.body).split("/")[-2]
    operator = Client()
    operator.force_login(make_user("olga", is_staff=True, is_superuser=True))

    page = operator.get(f"/admin/notifications/notification/{row.pk}/change/")

    assert page.status_code == 200
    body = page.content.decode()
    assert "Hidden: this message carries a one-time set-password link." in body
    assert token not in body
