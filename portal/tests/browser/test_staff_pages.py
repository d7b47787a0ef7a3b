"""Store staff pages in a real browser: an order from New to Ready by clicking, and every staff
page checked with axe-core at 390 and 1280 px and with the Nu HTML checker."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import Page, expect

from orders.lifecycle import OrderStatus
from orders.models import Order
from orders.services import order_accept, order_mark_ready, order_record_picked, order_start_picking
from portal.tests.browser.conftest import assert_accessible, assert_valid_html, log_in
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
from retailers.models import StaffRole

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _store_with_order():
    mall = make_mall(name="Fashion Show", time_zone="America/Los_Angeles")
    store = make_store(name="Zara Fashion Show", mall=mall)
    shirt = make_listing(seller=store.seller, title="Linen shirt")
    make_stock(store=store, listing=shirt, on_hand=5)
    order = make_order(store=store, lines=[(shirt, 2)], marketplace_order_id="113-0000001-0000001")
    return store, order


def test_staff_takes_order_from_new_to_ready_by_clicking(page: Page) -> None:
    store, order = _store_with_order()
    make_staff(store=store, user=make_user("dana"))

    log_in(page, "dana", PASSWORD)
    new_column = page.get_by_role("region", name="New")
    ready_column = page.get_by_role("region", name="Ready for pickup")
    panel = page.locator("#order-panel")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Zara Fashion Show")
    expect(new_column.locator("article")).to_contain_text("113-0000001-0000001")
    expect(new_column).to_contain_text("2 × Linen shirt")

    new_column.get_by_role("link", name="113-0000001-0000001").click()
    expect(panel.get_by_role("heading", name="Order 113-0000001-0000001")).to_be_visible()
    expect(panel.locator(".order-status")).to_have_text("Received")

    panel.get_by_role("button", name="Accept order").click()
    expect(page.get_by_role("status")).to_have_text("Order 113-0000001-0000001 accepted.")
    expect(panel.locator(".order-status")).to_have_text("Accepted")

    panel.get_by_role("button", name="Start picking").click()
    expect(page.get_by_role("status")).to_have_text("Picking started for order 113-0000001-0000001.")
    expect(panel.locator(".order-status")).to_have_text("Picking")
    expect(page.get_by_role("region", name="Picking").locator("article")).to_contain_text("113-0000001-0000001")

    panel.get_by_label("Picked of Linen shirt").fill("2")
    panel.get_by_role("button", name="Save picked quantities").click()
    expect(page.get_by_role("status")).to_have_text("Picked quantities saved.")
    expect(panel.get_by_label("Picked of Linen shirt")).to_have_value("2")

    panel.get_by_label("Packages").fill("2")
    panel.get_by_role("button", name="Mark ready").click()
    expect(page.get_by_role("status")).to_have_text("Order 113-0000001-0000001 is ready for pickup. Print its labels.")
    expect(panel.locator(".order-status")).to_have_text("Ready for pickup")
    expect(panel.locator(".packages li")).to_have_count(2)
    expect(panel.get_by_role("link", name="Print labels")).to_be_visible()
    expect(ready_column.locator("article")).to_contain_text("113-0000001-0000001")
    expect(new_column.locator("article")).to_have_count(0)

    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    assert order.packages.count() == 2
    assert set(order.events.exclude(actor=None).values_list("actor__username", flat=True)) == {"dana"}


def _ready_order_and_users():
    store, order = _store_with_order()
    associate = make_staff(store=store, user=make_user("dana")).user
    make_staff(store=store, user=make_user("maria"), role=StaffRole.MANAGER)
    other = make_order(store=store, marketplace_order_id="113-0000002-0000002")
    order_accept(order=order, acting_user=associate)
    order_start_picking(order=Order.objects.get(pk=order.pk), acting_user=associate)
    line = order.lines.get()
    order_record_picked(order=Order.objects.get(pk=order.pk), acting_user=associate, picked={line.pk: 2})
    order_mark_ready(order=Order.objects.get(pk=order.pk), acting_user=associate, package_count=2)
    return store, order, other


def _staff_pages(order: Order, other: Order) -> dict[str, tuple[str, str]]:
    """name → (user, path): every staff page, as the person who uses it."""
    return {
        "board": ("dana", "/store/"),
        "board with open order": ("dana", f"/store/orders/{other.pk}/"),
        "ready order": ("dana", f"/store/orders/{order.pk}/"),
        "search form": ("dana", "/store/search/"),
        "search results": ("dana", "/store/search/?q=113-"),
        "search no match": ("dana", "/store/search/?q=NOPE-123"),
        "labels": ("dana", f"/store/orders/{order.pk}/labels/"),
        "settings": ("maria", "/store/settings/"),
    }


def test_staff_pages_pass_axe(page: Page) -> None:
    _, order, other = _ready_order_and_users()
    current_user = None

    for name, (username, path) in _staff_pages(order, other).items():
        if username != current_user:
            page.context.clear_cookies()
            log_in(page, username, PASSWORD)
            current_user = username
        response = page.goto(path)
        assert response.status == 200, f"{name}: {path} answered {response.status}"
        assert_accessible(page)


def test_staff_pages_pass_nu_html_checker() -> None:
    _, order, other = _ready_order_and_users()
    clients = {"dana": Client(), "maria": Client()}
    for username, client in clients.items():
        client.force_login(User.objects.get(username=username))

    documents = []
    for name, (username, path) in _staff_pages(order, other).items():
        response = clients[username].get(path)
        assert response.status_code == 200, f"{name}: {path} answered {response.status_code}"
        documents.append((name, response.content.decode()))

    assert_valid_html(*documents)


@pytest.mark.parametrize("width", [390])
def test_demo_staff_fs_1_takes_first_received_order_to_ready_on_a_phone(page: Page) -> None:
    call_command("seed_demo", stdout=StringIO())
    log_in(page, "staff-fs-1", "mallrun-demo")
    new_column = page.get_by_role("region", name="New")
    panel = page.locator("#order-panel")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sunset Apparel Fashion Show")
    # New holds received and accepted orders; the first one still to accept.
    first_card = new_column.locator("article", has_text="Received").first
    number = first_card.get_by_role("link").inner_text()

    first_card.get_by_role("link").click()
    expect(panel.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    panel.get_by_role("button", name="Accept order").click()
    expect(page.get_by_role("status")).to_have_text(f"Order {number} accepted.")
    panel.get_by_role("button", name="Start picking").click()
    expect(page.get_by_role("status")).to_have_text(f"Picking started for order {number}.")
    for quantity in panel.locator(".picked-form input[type=number]").all():
        quantity.fill(quantity.get_attribute("max"))
    panel.get_by_role("button", name="Save picked quantities").click()
    expect(page.get_by_role("status")).to_have_text("Picked quantities saved.")
    panel.get_by_label("Packages").fill("1")
    panel.get_by_role("button", name="Mark ready").click()

    expect(page.get_by_role("status")).to_have_text(f"Order {number} is ready for pickup. Print its labels.")
    expect(panel.locator(".order-status")).to_have_text("Ready for pickup")
    expect(page.get_by_role("region", name="Ready for pickup").get_by_role("link", name=number)).to_be_visible()
    order = Order.objects.get(marketplace_order_id=number)
    assert order.status == OrderStatus.READY
    assert order.packages.count() == 1
