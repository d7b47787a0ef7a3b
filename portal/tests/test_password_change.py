"""Changing one's password while logged in: linked from every page's top bar, the current
password asked first, the session kept and the account's other sessions ended; in a real browser
at 390 and 1280 px by keyboard, with axe-core and the Nu HTML checker on each page state."""

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Page, expect

from portal.tests.browser.conftest import (  # noqa: F401
    assert_accessible,
    assert_valid_html,
    browser,
    log_in,
    open_account_menu,
    page,
    width,
)
from portal.tests.factories import PASSWORD, make_staff, make_store, make_user

CHANGE = "/accounts/password_change/"
NEW_PASSWORD = "blue-counter-42-mall"


def _logged_in(user) -> Client:
    client = Client()
    client.post(reverse("login"), {"username": user.get_username(), "password": PASSWORD})
    return client


@pytest.mark.django_db
def test_password_change_is_linked_from_the_top_bar_of_a_logged_in_page() -> None:
    user = make_user("dana")
    make_staff(store=make_store(), user=user)

    board = _logged_in(user).get("/store/", follow=True).content.decode()

    assert f'<a class="topbar-password" href="{CHANGE}">Change password</a>' in board


@pytest.mark.django_db
def test_password_change_keeps_this_session_and_ends_the_others() -> None:
    user = make_user("dana")
    make_staff(store=make_store(), user=user)
    here, elsewhere = _logged_in(user), _logged_in(user)

    response = here.post(
        CHANGE, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert (response.status_code, response["Location"]) == (302, "/")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    board = here.get("/", follow=True)
    assert board.redirect_chain[-1][0] == "/store/"
    assert "Your password is changed." in board.content.decode()
    assert elsewhere.get("/store/")["Location"] == "/accounts/login/?next=/store/"


@pytest.mark.django_db
def test_password_change_with_a_wrong_current_password_changes_nothing() -> None:
    user = make_user("dana")
    client = _logged_in(user)

    response = client.post(
        CHANGE, {"old_password": "not-my-password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "Your password was not changed: correct the fields below." in text
    assert "Your old password was entered incorrectly. Please enter it again." in text
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_password_change_asks_anonymous_visitors_to_log_in() -> None:
    assert Client().get(CHANGE)["Location"] == f"/accounts/login/?next={CHANGE}"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_password_change_by_keyboard_announces_errors_and_passes_axe(page: Page) -> None:  # noqa: F811
    make_staff(store=make_store(name="Zara Fashion Show"), user=make_user("dana"))
    log_in(page, "dana", PASSWORD)

    open_account_menu(page)
    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")
    assert_accessible(page)

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill("not-the-same-77")
    page.get_by_label("New password confirmation").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Your password was not changed")
    expect(page.locator("#id_new_password2_error")).to_contain_text("The two password fields didn’t match.")
    assert_accessible(page)

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change my password").click()
    expect(page.locator(".messages")).to_contain_text("Your password is changed.")
    assert page.url.endswith("/store/")


@pytest.mark.browser
@pytest.mark.django_db
def test_password_change_pages_pass_nu_html_checker() -> None:
    client = _logged_in(make_user("dana"))
    form = client.get(CHANGE).content.decode()
    errors = client.post(CHANGE, {"old_password": "x", "new_password1": "a", "new_password2": "b"}).content.decode()

    assert_valid_html(("change form", form), ("change form with errors", errors))
