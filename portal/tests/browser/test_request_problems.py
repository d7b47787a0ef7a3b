"""A request from a page that fails says so: no connection, an expired page, a failing poll."""

import re

import pytest
from playwright.sync_api import Page, expect

from orders.models import Order
from portal.tests.browser.conftest import assert_accessible, log_in, open_account_menu
from portal.tests.factories import (
    PASSWORD,
    make_listing,
    make_mall,
    make_order,
    make_staff,
    make_stock,
    make_store,
    make_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NO_CONNECTION = "No connection: this was not saved. Check the connection and try again."
EXPIRED = (
    "This page has expired: you were logged out, or logged in again in another tab. Reload the page, then try again."
)
BOARD_POLL = re.compile(r"/store/\?since=")
POLL = "Mallrun cannot be reached: this page may be out of date. It updates again once the connection is back."


@pytest.fixture
def order():
    store = make_store(name="Zara Fashion Show", mall=make_mall(name="Fashion Show"))
    shirt = make_listing(seller=store.seller, title="Linen shirt")
    make_stock(store=store, listing=shirt, on_hand=5)
    make_staff(store=store, user=make_user("dana"))
    return make_order(store=store, lines=[(shirt, 1)], marketplace_order_id="113-0000001-0000001")


def test_action_without_a_connection_says_it_was_not_saved_and_the_next_one_clears_it(page: Page, order) -> None:
    log_in(page, "dana", PASSWORD)
    page.get_by_role("region", name="New").get_by_role("link", name=order.marketplace_order_id).click()
    panel = page.locator("#order-panel")
    problem = page.locator("#request-problem")

    page.route("**/accept/", lambda route: route.abort("internetdisconnected"))
    panel.get_by_role("button", name="Accept order").click()
    expect(problem).to_be_visible()
    expect(problem).to_have_attribute("role", "alert")
    expect(problem.locator("p")).to_have_text(NO_CONNECTION)
    assert Order.objects.get(pk=order.pk).status == "received"
    assert_accessible(page)

    page.unroute("**/accept/")
    panel.get_by_role("button", name="Accept order").click()
    expect(page.get_by_role("status")).to_have_text(f"Order {order.marketplace_order_id} accepted.")
    expect(problem).to_be_hidden()


def test_action_after_logging_in_again_in_another_tab_says_the_page_expired(page: Page, order) -> None:
    log_in(page, "dana", PASSWORD)
    page.get_by_role("region", name="New").get_by_role("link", name=order.marketplace_order_id).click()
    other_tab = page.context.new_page()
    other_tab.goto("/store/")
    open_account_menu(other_tab)
    other_tab.get_by_role("button", name="Log out").click()
    log_in(other_tab, "dana", PASSWORD)  # a new session, and a new CSRF token

    page.locator("#order-panel").get_by_role("button", name="Accept order").click()

    expect(page.locator("#request-problem p")).to_have_text(EXPIRED)
    assert Order.objects.get(pk=order.pk).status == "received"
    page.locator("#request-problem").get_by_role("button", name="Reload the page").click()
    expect(page.locator("#request-problem")).to_have_count(0)
    expect(page.locator("#order-panel").get_by_role("button", name="Accept order")).to_be_visible()


def test_board_poll_that_fails_says_the_page_may_be_out_of_date_until_one_succeeds(page: Page, order) -> None:
    log_in(page, "dana", PASSWORD)
    problem = page.locator("#request-problem")
    page.route(BOARD_POLL, lambda route: route.abort("internetdisconnected"))

    expect(problem.locator("p")).to_have_text(POLL, timeout=15_000)

    page.unroute(BOARD_POLL)
    expect(problem).to_be_hidden(timeout=15_000)
