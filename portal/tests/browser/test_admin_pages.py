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


def test_route_assign_page_passes_axe_with_and_without_an_error(page: Page) -> None:
    from decimal import Decimal

    from django.utils import timezone

    from drivers import services
    from drivers.tests.factories import make_driver, make_ready_order
    from portal.tests.factories import make_mall, make_store

    make_user("olivia", is_staff=True, is_superuser=True)
    mall = make_mall()
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    driver = make_driver(market=mall.market, online=True)
    log_in(page, "olivia", PASSWORD)

    page.goto(f"/admin/drivers/route/{route.pk}/change/")
    page.get_by_role("link", name="Give to a driver…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Give {route} to a driver")
    assert_accessible(page)
    page.get_by_role("button", name=f"Give {route} to this driver").click()
    expect(page.get_by_role("alert")).to_have_text("Choose the driver who takes the route.")
    assert_accessible(page)
    page.get_by_label("Driver").select_option(label=str(driver))
    page.get_by_role("button", name=f"Give {route} to this driver").click()
    expect(page.locator(".messagelist")).to_contain_text(f"{route} is {driver}'s now")
