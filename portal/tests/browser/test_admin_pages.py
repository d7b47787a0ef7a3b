"""Operators' admin pages built from Django's own widgets, in a real browser: axe-core at 390 and
1280 px finds no serious or critical violation once static/js/admin.js has named what Django's
widgets leave unnamed (split date-and-time fields, the filter boxes' search icons)."""

import pytest
from playwright.sync_api import Page, expect

from portal.tests.browser.conftest import assert_accessible, log_in
from portal.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_user_change_page_passes_axe_for_an_operator(page: Page) -> None:
    make_user("olivia", is_staff=True, is_superuser=True)
    someone = make_user("sam", first_name="Sam")
    log_in(page, "olivia", PASSWORD)

    page.goto(f"/admin/auth/user/{someone.pk}/change/")

    expect(page.locator("#id_last_login_0")).to_have_attribute("aria-label", "Last login, date")
    expect(page.locator("#id_last_login_1")).to_have_attribute("aria-label", "Last login, time")
    expect(page.locator("span.search-label-icon").first).to_have_attribute("role", "img")
    assert_accessible(page)
