"""The log-in pages in a real browser at 390 and 1280 px (axe), and their served HTML (Nu)."""

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from portal.tests.browser.conftest import assert_accessible, assert_valid_html, log_in, open_account_menu
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
    open_account_menu(page)
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


def test_account_menu_by_keyboard_opens_on_the_persons_name_and_closes_on_escape(page: Page) -> None:
    make_staff(store=make_store(name="Sunset Apparel Fashion Show"), user=make_user("dana", first_name="Dana"))
    log_in(page, "dana", PASSWORD)
    account = page.locator(".topbar-account > summary")
    expect(account).to_have_text("Account: Dana")
    log_out = page.get_by_role("button", name="Log out")
    expect(log_out).to_be_hidden()

    account.focus()
    page.keyboard.press("Enter")
    expect(log_out).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Change password")).to_be_focused()
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(log_out).to_be_hidden()
    expect(account).to_be_focused()

    account.click()
    expect(log_out).to_be_visible()
    page.mouse.click(10, 600)  # a click elsewhere on the page closes it too
    expect(log_out).to_be_hidden()


def test_store_top_bar_on_a_phone_keeps_search_and_handoff_in_four_rows_or_fewer(page: Page) -> None:
    make_staff(store=make_store(name="Sunset Apparel Fashion Show"), user=make_user("dana", first_name="Dana"))
    log_in(page, "dana", PASSWORD)
    if page.viewport_size["width"] > 400:
        expect(page.locator(".topbar")).to_have_css("flex-wrap", "wrap")
        return
    # Rows of the top bar: an element starting below every element before it starts a new one.
    rows = page.evaluate(
        """() => {
          const boxes = [...document.querySelector('.topbar').children]
            .filter(e => e.offsetParent !== null)
            .map(e => e.getBoundingClientRect())
            .sort((a, b) => a.top - b.top);
          let rows = 0, bottom = -Infinity;
          for (const box of boxes) {
            if (box.top >= bottom - 1) { rows += 1; bottom = box.bottom; }
            else { bottom = Math.max(bottom, box.bottom); }
          }
          return rows;
        }"""
    )
    assert rows <= 4
    expect(page.get_by_role("search")).to_be_in_viewport()
    expect(page.locator(".topbar-handoff")).to_be_in_viewport()
