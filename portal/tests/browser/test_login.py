"""The log-in pages in a real browser at 390 and 1280 px (axe), and their served HTML (Nu)."""

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from portal.tests.browser.conftest import assert_accessible, assert_valid_html, log_in
from portal.tests.factories import PASSWORD, make_staff, make_store, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LOGIN = "/accounts/login/"


def _fail_logins(username: str, times: int) -> None:
    client = Client()
    for _ in range(times):
        client.post(LOGIN, {"username": username, "password": "not-the-password"})


def test_login_pages_pass_axe(page: Page) -> None:
    page.goto(LOGIN)
    assert_accessible(page)
    page.goto(f"{LOGIN}?idle=1")
    expect(page.get_by_role("status")).to_contain_text("You were logged out after a while without activity.")
    assert_accessible(page)

    log_in(page, "nobody", "wrong")

    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page)


def test_login_pages_pass_nu_html_checker() -> None:
    make_user("dana")
    _fail_logins("dana", 4)
    client = Client()

    documents = [
        ("login", client.get(LOGIN).content.decode()),
        ("login idle", client.get(f"{LOGIN}?idle=1").content.decode()),
        ("login failed", client.post(LOGIN, {"username": "eli", "password": "x"}).content.decode()),
        ("locked out", client.post(LOGIN, {"username": "dana", "password": "x"}).content.decode()),
        ("404", client.get("/no-such-page/").content.decode()),
    ]

    assert "Too many failed log-in attempts" in documents[3][1]
    assert_valid_html(*documents)


def test_login_by_clicking_reaches_the_board(page: Page) -> None:
    make_staff(store=make_store(name="Zara Fashion Show"), user=make_user("dana"))

    log_in(page, "dana", PASSWORD)

    assert page.url.endswith("/store/")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_login_wrong_password_shows_error_in_alert(page: Page) -> None:
    make_user("dana")

    log_in(page, "dana", "not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password.")
    expect(page.get_by_label("Username")).to_have_value("dana")


def test_login_fifth_failure_shows_locked_out_page(page: Page) -> None:
    make_user("dana")
    _fail_logins("dana", 4)

    with page.expect_response(lambda r: r.request.method == "POST") as locked:
        log_in(page, "dana", "not-the-password")

    assert locked.value.status == 429
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed log-in attempts")
    expect(page.get_by_role("alert")).to_contain_text("locked on this device for 15 minutes")
    assert_accessible(page)
