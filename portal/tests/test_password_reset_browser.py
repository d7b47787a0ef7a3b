"""Password reset in a real browser at 390 and 1280 px: an associate who forgot their password
goes from the log-in page through the four pages, by keyboard and mouse, sees errors announced,
and logs in with the new password; every page passes axe-core (no serious/critical) and the Nu
HTML checker, and so does the email's HTML part."""

import re

import pytest
from django.core.cache import cache
from django.test import Client
from playwright.sync_api import Page, expect

from portal.notifications.models import Notification
from portal.tests.browser.conftest import (  # noqa: F401
    assert_accessible,
    assert_valid_html,
    browser,
    log_in,
    open_account_menu,
    page,
    width,
)
from portal.tests.factories import make_staff, make_store, make_user
from retailers.invitations import invite_to_store
from retailers.models import StaffRole

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NEW_PASSWORD = "blue-counter-42-mall"


@pytest.fixture(autouse=True)
def _fresh_cache_and_base_url(settings):
    settings.PORTAL_BASE_URL = "https://mallrun.example"
    cache.clear()
    yield
    cache.clear()


def _reset_path() -> str:
    body = Notification.objects.get(kind="account.password_reset").body
    return re.search(r"https://mallrun\.example(/accounts/reset/\S+/)", body).group(1)


def test_password_reset_associate_resets_and_logs_in_every_page_passes_axe(page: Page) -> None:  # noqa: F811
    make_staff(store=make_store(name="Zara Fashion Show"), user=make_user("dana", email="dana@example.com"))

    page.goto("/accounts/login/")
    expect(page.get_by_role("link", name="Apply to join the program")).to_have_attribute("href", "/join/")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
    assert_accessible(page)

    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was sent: correct the email address below.")
    email = page.get_by_label("Email address")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    expect(page.locator("#id_email_error")).to_have_text("Enter the email address of your account.")
    assert_accessible(page)

    email.fill("dana@example.com")
    email.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert page.url.endswith("/accounts/password_reset/done/")
    assert_accessible(page)

    page.goto(_reset_path())
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    assert page.url.endswith("/set-password/")
    assert_accessible(page)

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill("not-the-same-77")
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("alert")).to_contain_text("Your password was not changed")
    expect(page.locator("#id_new_password2_error")).to_contain_text("The two password fields didn’t match.")
    assert_accessible(page)

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your password is changed")
    assert_accessible(page)

    page.get_by_role("link", name="Log in").click()
    log_in(page, "dana", NEW_PASSWORD)
    assert page.url.endswith("/store/")
    open_account_menu(page)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_password_reset_used_link_page_passes_axe(page: Page) -> None:  # noqa: F811
    user = make_user("dana", email="dana@example.com")
    Client().post("/accounts/password_reset/", {"email": "dana@example.com"})
    path = _reset_path()
    user.set_password(NEW_PASSWORD)
    user.save()

    page.goto(path)

    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    expect(page.get_by_role("link", name="Email me a new link")).to_have_attribute("href", "/accounts/password_reset/")
    assert_accessible(page)


def test_password_reset_pages_and_email_pass_nu_html_checker(settings) -> None:
    settings.PASSWORD_RESET_RATE_LIMIT_PER_EMAIL = 1
    make_user("dana", email="dana@example.com")
    client = Client()
    form = client.get("/accounts/password_reset/").content.decode()
    invalid = client.post("/accounts/password_reset/", {"email": "dana@"}).content.decode()
    client.post("/accounts/password_reset/", {"email": "dana@example.com"})
    limited = client.post("/accounts/password_reset/", {"email": "dana@example.com"})
    done = client.get("/accounts/password_reset/done/").content.decode()
    row = Notification.objects.get(kind="account.password_reset")
    confirm_url = client.get(_reset_path()).url
    confirm = client.get(confirm_url).content.decode()
    confirm_errors = client.post(confirm_url, {"new_password1": "abc", "new_password2": "abd"}).content.decode()
    complete_response = client.post(confirm_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    complete = client.get(complete_response.url).content.decode()
    used = client.get(_reset_path(), follow=True).content.decode()

    assert limited.status_code == 429
    assert "This link does not work" in used
    assert_valid_html(
        ("reset form", form),
        ("reset form with errors", invalid),
        ("reset form rate-limited", limited.content.decode()),
        ("reset done", done),
        ("confirm", confirm),
        ("confirm with errors", confirm_errors),
        ("complete", complete),
        ("used link", used),
        ("login", client.get("/accounts/login/").content.decode()),
        ("reset email html part", row.html_body),
    )


def test_invite_set_password_page_with_errors_passes_nu_html_checker() -> None:
    invite_to_store(store=make_store(), email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=None)
    body = Notification.objects.get(kind="store.invitation").body
    client = Client()
    form_url = client.get(re.search(r"https?://[^/\s]+(/accounts/invite/[^/\s]+/[^/\s]+/)", body).group(1)).url

    errors = client.post(form_url, {"new_password1": "pat@example.com", "new_password2": "pat@example.com"})

    assert "The password is too similar to the username." in errors.content.decode()
    assert_valid_html(("invite set password with errors", errors.content.decode()))
