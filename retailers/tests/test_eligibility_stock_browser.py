"""/store/stock in headless Chromium: editing stock shows the eligibility change in the row; the
page passes axe-core at 390 and 1280 px and the Nu HTML checker."""

import datetime as dt

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from portal.tests.browser.conftest import assert_accessible, assert_valid_html, browser, log_in, page, width  # noqa: F401
from portal.tests.factories import PASSWORD, make_listing, make_staff, make_stock, make_store, make_user
from retailers.eligibility_sql import eligibility_recompute

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _store_with_staff():
    store = make_store(name="Sunset Apparel — Fashion Show", same_day_cutoff=dt.time(23, 59, 59))
    tee = make_listing(seller=store.seller, seller_sku="SA-TEE-001", title="Logo tee")
    cap = make_listing(seller=store.seller, seller_sku="SA-CAP-002", title="Cap")
    make_stock(store=store, listing=tee, on_hand=3, reserved=1)
    make_stock(store=store, listing=cap, on_hand=2)
    eligibility_recompute()
    user = make_user(username="sam")
    make_staff(store=store, user=user)
    return store, cap, user


def test_stock_page_edit_shows_out_of_stock_in_the_row_and_passes_axe(page: Page) -> None:  # noqa: F811
    _, cap, _ = _store_with_staff()
    log_in(page, "sam", PASSWORD)
    page.goto("/store/stock/")
    assert_accessible(page)
    row = page.locator(f"#stock-row-{cap.pk}")

    row.get_by_label("On hand of SA-CAP-002").fill("0")
    row.get_by_role("button", name="Save").click()

    expect(page.locator(f"#stock-row-{cap.pk}")).to_contain_text("Out of stock")
    expect(page.locator(f"#stock-row-{cap.pk}")).to_contain_text("Not eligible")
    assert_accessible(page)


def test_stock_pages_pass_nu_html_checker() -> None:
    _, cap, user = _store_with_staff()
    client = Client()
    client.force_login(user)

    page_html = client.get("/store/stock/").content.decode()
    search_html = client.get("/store/stock/?q=nothing-matches").content.decode()
    error_html = client.post(f"/store/stock/{cap.pk}/", {"on_hand": "-3"}).content.decode()

    assert_valid_html(("stock", page_html), ("stock search", search_html), ("stock error", error_html))


def test_stock_page_save_by_keyboard_keeps_the_focus_on_the_rows_save_button(page: Page) -> None:  # noqa: F811
    _, cap, _ = _store_with_staff()
    log_in(page, "sam", PASSWORD)
    page.goto("/store/stock/")
    row = page.locator(f"#stock-row-{cap.pk}")
    row.get_by_label("On hand of SA-CAP-002").fill("5")

    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    expect(page.locator(f"#stock-row-{cap.pk} td[data-label=Available]")).to_have_text("5")
    expect(page.locator(f"#stock-row-{cap.pk}").get_by_role("button", name="Save")).to_be_focused()


def test_stock_page_announces_the_saved_row_in_a_live_region_that_stays(page: Page) -> None:  # noqa: F811
    _, cap, _ = _store_with_staff()
    log_in(page, "sam", PASSWORD)
    page.goto("/store/stock/")
    status = page.get_by_role("status").element_handle()
    row = page.locator(f"#stock-row-{cap.pk}")

    row.get_by_label("On hand of SA-CAP-002").fill("0")
    row.get_by_role("button", name="Save").click()
    expect(page.locator(f"#stock-row-{cap.pk}")).to_contain_text("Out of stock")
    row.get_by_label("On hand of SA-CAP-002").fill("-2")
    row.get_by_role("button", name="Save").click()
    expect(page.locator(f"#stock-row-{cap.pk} .field-error")).to_be_visible()

    # The same node before and after both swaps: screen readers read changes to a live region
    # that was already on the page, not a region that arrives with new content.
    assert status.evaluate("node => [node.isConnected, node.getAttribute('aria-live')]") == [True, "polite"]
    assert status.text_content() == "SA-CAP-002 not saved: Ensure this value is greater than or equal to 0."
