"""The seller manager's eligibility pages in the admin (the results list and a listing's page)
in headless Chromium: axe-core at 390 and 1280 px, and the Nu HTML checker."""

import datetime as dt
import re

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from portal.tests.browser.conftest import assert_accessible, assert_valid_html, browser, log_in, page, width  # noqa: F401
from portal.tests.factories import PASSWORD, make_listing, make_seller_manager, make_stock, make_store, make_user
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import StoreHours

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=dt.UTC)


def _manager_with_results():
    store = make_store(name="Sunset Apparel — Fashion Show")
    tee = make_listing(seller=store.seller, seller_sku="SA-TEE-001", title="Logo tee")
    cap = make_listing(seller=store.seller, seller_sku="SA-CAP-002", title="Cap")
    make_stock(store=store, listing=tee, on_hand=3)
    eligibility_recompute(now=NOON_LA, driver_markets={store.mall.market_id})
    user = make_user(username="mia", is_staff=True)
    make_seller_manager(seller=store.seller, user=user)
    return user, cap


def test_eligibility_admin_pages_pass_axe(page: Page) -> None:  # noqa: F811
    _, cap = _manager_with_results()
    log_in(page, "mia", PASSWORD)

    page.goto("/admin/retailers/eligibilityresult/")
    expect(page.locator("#result_list")).to_contain_text("restock 1 unit at Sunset Apparel — Fashion Show")
    assert_accessible(page)
    page.goto(f"/admin/retailers/listing/{cap.pk}/change/")
    expect(page.locator("body")).to_contain_text("restock 1 unit at Sunset Apparel — Fashion Show")
    assert_accessible(page)


def test_stock_list_with_editable_counts_passes_axe(page: Page) -> None:  # noqa: F811
    # Each on-hand input of the list names its row (the admin gives them no <label>).
    _manager_with_results()
    log_in(page, "mia", PASSWORD)

    page.goto("/admin/retailers/stock/")

    expect(page.get_by_label("On hand of SA-TEE-001 at Sunset Apparel — Fashion Show")).to_have_value("3")
    assert_accessible(page)


def test_store_page_with_its_hours_and_team_inlines_passes_axe(page: Page) -> None:  # noqa: F811
    # Tabular inlines: each input is named by its column and row (static/js/admin.js), and the
    # table that scrolls sideways on a phone sits in a region the keyboard reaches.
    user, _ = _manager_with_results()
    store = user.seller_memberships.get().seller.stores.get()
    monday = StoreHours.objects.get(store=store, weekday=0)
    log_in(page, "mia", PASSWORD)

    page.goto(f"/admin/retailers/store/{store.pk}/change/")

    opens = page.locator("#id_hours-0-opens_at")
    expect(opens).to_have_attribute("aria-label", re.compile(rf"^Opens at — {re.escape(str(monday))}$"))
    expect(page.locator("#hours-group")).to_have_attribute("tabindex", "0")
    assert_accessible(page)


def test_eligibility_admin_pages_pass_nu_html_checker() -> None:
    user, cap = _manager_with_results()
    client = Client()
    client.force_login(user)

    results = client.get("/admin/retailers/eligibilityresult/").content.decode()
    filtered = client.get("/admin/retailers/eligibilityresult/?reason=out_of_stock").content.decode()
    listing = client.get(f"/admin/retailers/listing/{cap.pk}/change/").content.decode()

    assert_valid_html(("results", results), ("results by reason", filtered), ("listing", listing))


@pytest.mark.parametrize("width", [390], indirect=True)
def test_eligibility_results_on_a_phone_show_the_badge_and_reasons_without_scrolling_sideways(page: Page) -> None:  # noqa: F811
    _, cap = _manager_with_results()
    # Reasons enough to wrap on a phone: out of stock, too heavy, oversize, hazmat.
    cap.__class__.objects.filter(pk=cap.pk).update(weight_grams=60_000, size_class="oversize", hazmat=True)
    eligibility_recompute(now=NOON_LA, driver_markets={cap.seller.stores.get().mall.market_id})
    log_in(page, "mia", PASSWORD)

    page.goto("/admin/retailers/eligibilityresult/?eligible__exact=0")

    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("SA-CAP-002")
    for cell in [row.locator(".elig-badge"), row.locator(".field-reason_list")]:
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, box
    # Every line of the reasons starts beside the "Why not" name, none under it.
    lines = row.locator(".field-reason_list").evaluate(
        """cell => {
          const text = [...cell.childNodes].find(node => node.nodeType === 3 && node.textContent.trim());
          const range = document.createRange();
          range.selectNodeContents(text);
          return [...range.getClientRects()].map(rect => rect.left - cell.getBoundingClientRect().left);
        }"""
    )
    assert lines and min(lines) >= 7.5 * 16, lines


@pytest.mark.parametrize("width", [390], indirect=True)
def test_listing_page_on_a_phone_shows_each_malls_explanation_without_scrolling_sideways(page: Page) -> None:  # noqa: F811
    _, cap = _manager_with_results()
    log_in(page, "mia", PASSWORD)

    page.goto(f"/admin/retailers/listing/{cap.pk}/change/")

    row = page.locator("#eligibility-group tbody tr.has_original").first
    expect(row).to_contain_text("restock 1 unit at Sunset Apparel — Fashion Show")
    for field in ["reason_list", "hint", "until_local"]:
        box = row.locator(f"td.field-{field}").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, box
