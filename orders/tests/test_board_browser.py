"""The board in a real browser: the poll refreshes it without touching the open order panel,
and the store pages pass axe at 390 and 1280 px and the Nu checker."""

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from orders.models import Order
from orders.services import order_accept, order_cancel, order_record_picked, order_start_picking
from portal.tests.browser import conftest as harness
from portal.tests.browser.conftest import assert_accessible, assert_valid_html, log_in
from portal.tests.factories import PASSWORD, make_listing, make_mall, make_order, make_staff, make_stock, make_store
from retailers.models import Stock

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# The browser harness's fixtures, shared with portal/tests/browser/ (pytest finds them by name here).
browser, width, page = harness.browser, harness.width, harness.page


def _shop():
    store = make_store(name="Sunglass Spot", mall=make_mall(time_zone="America/Phoenix"))
    staff = make_staff(store=store).user
    picking = make_order(store=store)
    order_accept(order=picking, acting_user=staff)
    order_start_picking(order=picking, acting_user=staff)
    waiting = make_order(store=store)
    return store, staff, picking, waiting


def test_board_poll_keeps_typing_and_open_card(page: Page) -> None:
    _, staff, picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto("/store/")

    page.locator(f"#card-{picking.pk} a").click()
    reason = page.get_by_label("Reason").first
    reason.fill("Size M is not on the shelf")
    order_accept(order=waiting, acting_user=staff)
    with page.expect_response(lambda r: "/store/?since=" in r.url and r.status == 200, timeout=20_000):
        pass

    expect(page.locator(f"#card-{waiting.pk} .card-status")).to_have_text("Accepted")
    expect(reason).to_have_value("Size M is not on the shelf")
    expect(page.locator(f"#card-{picking.pk}")).to_have_attribute("aria-current", "true")
    assert page.url.endswith(f"/store/orders/{picking.pk}/")


def test_board_action_in_panel_moves_card(page: Page) -> None:
    _, staff, picking, _ = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{picking.pk}/")

    page.get_by_label(f"Picked of {picking.lines.get().listing.title}").fill("1")
    page.get_by_role("button", name="Save picked quantities").click()
    expect(page.get_by_role("status").filter(has_text="Picked quantities saved.")).to_be_visible()
    page.get_by_role("button", name="Mark ready").click()

    expect(page.locator(f"#card-{picking.pk} .card-status")).to_have_text("Ready for pickup", timeout=15_000)
    expect(page.locator("section.column-ready")).to_contain_text(picking.number)
    expect(page.get_by_role("link", name="Print labels")).to_be_visible()


def test_store_pages_pass_axe(page: Page) -> None:
    _, staff, picking, _ = _shop()
    log_in(page, staff.username, PASSWORD)

    for path in ("/store/", f"/store/orders/{picking.pk}/", f"/store/search/?q={picking.number[:5]}", "/store/search/"):
        page.goto(path)
        assert_accessible(page)


def test_store_pages_pass_nu_html_checker() -> None:
    store, staff, picking, waiting = _shop()
    order_record_picked(order=picking, acting_user=staff, picked={picking.lines.get().pk: 1})
    store.status, store.paused_reason = "paused", "Stocktake"
    store.save()
    client = Client()
    client.force_login(staff)

    documents = [
        ("board", client.get("/store/").content.decode()),
        ("order picking", client.get(f"/store/orders/{picking.pk}/").content.decode()),
        ("order received", client.get(f"/store/orders/{waiting.pk}/").content.decode()),
        ("order refused", client.post(f"/store/orders/{waiting.pk}/picked/", {}).content.decode()),
        ("search", client.get("/store/search/", {"q": "113-"}).content.decode()),
        ("search empty", client.get("/store/search/").content.decode()),
    ]

    assert_valid_html(*documents)


def test_board_poll_keeps_the_keyboard_focus_on_the_card_link(page: Page) -> None:
    _, staff, picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto("/store/")
    page.get_by_role("link", name=picking.number).focus()

    order_accept(order=waiting, acting_user=staff)
    with page.expect_response(lambda r: "/store/?since=" in r.url and r.status == 200, timeout=20_000):
        pass

    expect(page.locator(f"#card-{waiting.pk} .card-status")).to_have_text("Accepted")
    expect(page.get_by_role("link", name=picking.number)).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name=waiting.number)).to_be_focused()

    handoff = page.get_by_role("region", name="Ready for pickup").get_by_role("link", name="Hand over to driver")
    handoff.focus()
    order_start_picking(order=waiting, acting_user=staff)
    expect(page.locator(f"#card-{waiting.pk} .card-status")).to_have_text("Picking")
    expect(handoff).to_be_focused()


def test_order_action_button_is_disabled_while_its_request_runs(page: Page) -> None:
    _, staff, _, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{waiting.pk}/")
    held = []
    page.route("**/accept/", lambda route: held.append(route))

    accept = page.get_by_role("button", name="Accept order")
    accept.click()
    expect(accept).to_be_disabled()
    held[0].continue_()

    expect(page.get_by_role("status").filter(has_text="accepted")).to_have_text(f"Order {waiting.number} accepted.")
    expect(page.get_by_role("button", name="Start picking")).to_be_enabled()


def test_report_problem_counts_the_picked_quantity_typed_but_not_saved(page: Page) -> None:
    store = make_store(name="Sunglass Spot")
    staff = make_staff(store=store).user
    listing = make_listing(seller=store.seller, title="Aviator sunglasses")
    make_stock(store=store, listing=listing, on_hand=5)
    order = make_order(store=store, lines=[(listing, 3)])
    order_accept(order=order, acting_user=staff)
    order_start_picking(order=order, acting_user=staff)
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{order.pk}/")
    panel = page.locator("#order-panel")

    panel.get_by_label("Picked of Aviator sunglasses").fill("2")
    panel.get_by_role("group", name="Report a missing item").get_by_label("Reason").fill("One pair is missing")
    panel.get_by_role("button", name="Report problem").click()

    expect(page.get_by_role("status")).to_have_text(
        f"Problem reported on order {order.number}: send the rest or reject it."
    )
    expect(panel.locator(".order-status")).to_have_text("Item missing")
    expect(panel.locator("table.lines tbody tr td").nth(2)).to_have_text("2")
    stock = Stock.objects.get(store=store, listing=listing)
    assert (stock.on_hand, stock.reserved) == (4, 2)


def test_order_action_with_a_form_error_puts_the_focus_on_the_field(page: Page) -> None:
    _, staff, picking, _ = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{picking.pk}/")
    panel = page.locator("#order-panel")

    panel.get_by_role("button", name="Report problem").click()

    reason = panel.get_by_role("group", name="Report a missing item").get_by_label("Reason")
    expect(panel.get_by_role("alert")).to_have_text("Check the form below.")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_be_focused()


def test_open_panel_refreshes_when_the_marketplace_cancels_its_order_but_not_after_its_own_action(page: Page) -> None:
    _, staff, picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{waiting.pk}/")
    panel = page.locator("#order-panel")

    with page.expect_response(lambda r: "/store/?since=" in r.url and r.status == 200):
        panel.get_by_role("button", name="Accept order").click()
    page.wait_for_timeout(500)
    expect(page.get_by_role("status")).to_have_text(f"Order {waiting.number} accepted.")

    order_cancel(order=Order.objects.get(pk=waiting.pk), acting_user=None, reason="Shopper cancelled")

    expect(page.get_by_role("status")).to_have_text(
        f"Order {waiting.number} was changed elsewhere: it is now cancelled.", timeout=20_000
    )
    expect(panel.locator(".order-status")).to_have_text("Cancelled")
    expect(panel.get_by_role("button", name="Start picking")).to_have_count(0)


def test_board_names_the_orders_that_arrive_in_new_in_its_live_region(page: Page) -> None:
    store, staff, _picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto("/store/")
    news = page.get_by_role("log", name="New orders")
    # The orders on the board when the page loads are not news.
    expect(page.locator(f"#card-{waiting.pk}")).to_be_visible()
    expect(news.locator("p")).to_have_count(0)

    first = make_order(store=store)
    # The refresh the poll makes, without waiting for its 10 s.
    page.evaluate("htmx.trigger(document.body, 'orderChanged')")
    expect(page.locator(f"#card-{first.pk}")).to_be_visible()
    expect(news.locator("p")).to_have_text([f"New order {first.number}."])

    second, third = make_order(store=store), make_order(store=store)
    # An order already there that changes is not news.
    order_accept(order=waiting, acting_user=staff)
    page.evaluate("htmx.trigger(document.body, 'orderChanged')")
    expect(news.locator("p")).to_have_text(
        [f"New order {first.number}.", f"2 new orders: {second.number}, {third.number}."]
    )
    expect(page.locator(f"#card-{waiting.pk} .card-status")).to_have_text("Accepted")
    assert_accessible(page)


def test_reason_being_typed_survives_the_panels_refresh_when_a_colleague_accepts_the_order(page: Page) -> None:
    _, staff, picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{waiting.pk}/")
    panel = page.locator("#order-panel")
    reason = panel.get_by_role("group", name="Reject the order").get_by_label("Reason")
    reason.fill("Jacket size S has a torn seam")

    order_accept(order=Order.objects.get(pk=waiting.pk), acting_user=None)
    page.evaluate("htmx.trigger(document.body, 'orderChanged')")

    expect(page.get_by_role("status")).to_have_text(
        f"Order {waiting.number} was changed elsewhere: it is now accepted."
    )
    expect(panel.locator(".order-status")).to_have_text("Accepted")
    expect(reason).to_have_value("Jacket size S has a torn seam")

    page.locator(f"#card-{picking.pk} a").click()  # another order's panel starts empty
    expect(panel.get_by_role("heading", name=f"Order {picking.number}")).to_be_visible()
    expect(panel.get_by_role("group", name="Report a missing item").get_by_label("Reason")).to_have_value("")


def test_open_order_comes_before_the_board_in_reading_order_and_beside_it_on_a_wide_screen(page: Page) -> None:
    _, staff, _picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{waiting.pk}/")
    panel, board = page.locator("#order-panel"), page.locator("#board")
    expect(panel.get_by_role("heading", name=f"Order {waiting.number}")).to_be_visible()

    # Node.DOCUMENT_POSITION_FOLLOWING: the board comes after the panel in the page.
    assert page.evaluate(
        "document.getElementById('order-panel').compareDocumentPosition(document.getElementById('board')) & 4"
    )
    panel_box, board_box = panel.bounding_box(), board.bounding_box()
    if page.viewport_size["width"] >= 1024:
        assert panel_box["x"] > board_box["x"] + board_box["width"] - 1
    else:
        assert panel_box["y"] + panel_box["height"] <= board_box["y"] + 1


def test_panel_refreshing_by_itself_leaves_the_focus_in_the_search_box(page: Page) -> None:
    _, staff, _picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    page.goto(f"/store/orders/{waiting.pk}/")
    search = page.get_by_role("searchbox")
    search.fill("Jam")

    order_accept(order=Order.objects.get(pk=waiting.pk), acting_user=None)
    page.evaluate("htmx.trigger(document.body, 'orderChanged')")

    expect(page.get_by_role("status")).to_have_text(
        f"Order {waiting.number} was changed elsewhere: it is now accepted."
    )
    expect(search).to_be_focused()
    page.keyboard.type("ie")
    expect(search).to_have_value("Jamie")


def test_opening_an_order_from_the_board_names_it_in_the_tab_title(page: Page) -> None:
    _, staff, _picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    expect(page).to_have_title("Orders · Mallrun")

    page.locator(f"#card-{waiting.pk} a").click()

    expect(page.locator("#order-panel").get_by_role("heading", name=f"Order {waiting.number}")).to_be_visible()
    expect(page).to_have_title(f"Order {waiting.number} · Mallrun")
    expect(page.locator("#order-panel title")).to_have_count(0)


def test_back_after_opening_another_order_shows_the_first_as_it_is_now_and_keeps_no_copy(page: Page) -> None:
    _, staff, picking, waiting = _shop()
    log_in(page, staff.username, PASSWORD)
    panel = page.locator("#order-panel")
    page.locator(f"#card-{waiting.pk} a").click()
    expect(panel.locator(".order-status")).to_have_text("Received")
    page.locator(f"#card-{picking.pk} a").click()
    expect(panel.get_by_role("heading", name=f"Order {picking.number}")).to_be_visible()

    assert page.evaluate("sessionStorage.getItem('htmx-history-cache')") is None  # no copy of the pages kept

    order_accept(order=Order.objects.get(pk=waiting.pk), acting_user=None)  # a colleague, meanwhile
    page.go_back()

    # The page as it is now, at once (a kept copy would show "Received" until the board's next poll).
    expect(panel.get_by_role("heading", name=f"Order {waiting.number}")).to_be_visible()
    expect(panel.locator(".order-status")).to_have_text("Accepted", timeout=3_000)
    expect(panel.get_by_role("button", name="Accept order")).to_have_count(0)
