"""The whole delivery in two browsers at once (issue 3, point 10): staff mark an order ready on
the board, the route job offers it, the driver accepts on a phone, staff hand the packages over
against the driver's typed pickup code, the driver delivers with a photo and the board shows the
order done. Every driver page on the way passes axe and the Nu checker at 390 px."""

import io
import re
from decimal import Decimal

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from drivers import tasks
from drivers.models import Offer
from drivers.tests.factories import make_driver
from orders.lifecycle import OrderStatus
from orders.services import order_accept, order_record_picked, order_start_picking
from portal.tests.browser.conftest import assert_accessible, assert_valid_html, log_in
from portal.tests.factories import PASSWORD, make_mall, make_order, make_staff, make_store, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _context(browser: Browser, live_server, *, width: int) -> BrowserContext:
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    return context


def _check_driver_page(page: Page, documents: list[tuple[str, str]], name: str) -> None:
    """axe on the page as the driver sees it; the served HTML (not the DOM htmx changed) is kept
    for one Nu run at the end, since Java start-up dominates."""
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    documents.append((name, page.context.request.get(page.url).text()))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "orange").save(buffer, "PNG")
    return buffer.getvalue()


def test_order_goes_from_ready_to_done_across_staff_and_driver_browsers(browser: Browser, live_server) -> None:
    mall = make_mall(name="Fashion Show", time_zone="America/Los_Angeles", parking_instructions="Level P2")
    store = make_store(mall=mall, name="Zara")
    staff = make_staff(store=store, user=make_user("dana")).user
    order = make_order(store=store, latitude=mall.latitude + Decimal("0.03"), longitude=mall.longitude)
    order_accept(order=order, acting_user=staff)
    order_start_picking(order=order, acting_user=staff)
    order_record_picked(order=order, acting_user=staff, picked={line.pk: line.quantity for line in order.lines.all()})
    make_driver(
        market=mall.market,
        online=True,
        user=make_user("ana", first_name="Ana"),
        latitude=mall.latitude,
        longitude=mall.longitude,
    )
    staff_context = _context(browser, live_server, width=1280)
    driver_context = _context(browser, live_server, width=390)
    documents: list[tuple[str, str]] = []
    try:
        board = staff_context.new_page()
        phone = driver_context.new_page()
        log_in(board, "dana", PASSWORD)
        log_in(phone, "ana", PASSWORD)

        # Staff: the order is in Picking; they open it from the board and mark it ready.
        board.goto("/store/")
        board.get_by_role("region", name="Picking").get_by_role("link", name=order.number).click()
        panel = board.locator("#order-panel")
        panel.get_by_label("Packages").fill("2")
        panel.get_by_role("button", name="Mark ready").click()
        expect(board.get_by_role("status")).to_have_text(f"Order {order.number} is ready for pickup. Print its labels.")
        ready = board.get_by_role("region", name="Ready for pickup")
        expect(ready.locator("article")).to_contain_text(order.number)

        # Driver: nothing offered until the route job runs (here in the test process).
        phone.goto("/driver/")
        offers = phone.get_by_role("region", name="Offers")
        expect(offers.locator("article")).to_have_count(0)
        assert tasks.build_routes() == 1
        phone.reload()
        expect(offers.locator("article")).to_have_count(1)
        expect(offers.locator("article")).to_contain_text("Fashion Show")
        expect(offers.locator("[data-countdown]")).to_contain_text(" s left")
        _check_driver_page(phone, documents, "home with offer")

        offers.get_by_role("button", name="Accept").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("Route at Fashion Show")
        code = Offer.objects.get(route__stops__order=order, status="accepted").pickup_code
        expect(phone.locator(".pickup-digits")).to_have_text(code)
        expect(phone.get_by_role("img", name=f"QR code for pickup code {code}")).to_be_visible()
        _check_driver_page(phone, documents, "route assigned")

        # Staff: hand over against the code the driver's phone shows, ticking both labels.
        labels = sorted(package.label_code for package in order.packages.all())
        board.goto("/store/")
        ready.get_by_role("link", name="Hand over to driver").click()
        panel.get_by_label("Driver's pickup code").fill(phone.locator(".pickup-digits").inner_text())
        panel.get_by_role("button", name="Check code").click()
        expect(panel.get_by_text("Driver Ana")).to_be_visible()
        for label in labels:
            panel.get_by_role("checkbox", name=re.compile(label)).check()
        panel.get_by_role("button", name="Hand over to Ana").click()
        expect(board.get_by_role("status").filter(has_text="Handed")).to_have_text(
            f"Handed 2 packages to Ana: {labels[0]}, {labels[1]}."
        )
        expect(ready.locator("article")).to_have_count(0)

        # Driver: the route now shows the drop; delivered with a photo.
        phone.reload()
        _check_driver_page(phone, documents, "route picked up")
        phone.get_by_label("Photo of the package at the door").set_input_files(
            files=[{"name": "door.png", "mimeType": "image/png", "buffer": _png()}]
        )
        phone.get_by_role("button", name="Delivered").click()
        expect(phone.get_by_role("status").first).to_contain_text(f"Order {order.number} delivered.")
        _check_driver_page(phone, documents, "route delivered")

        # Staff: the board shows the order done.
        board.goto("/store/")
        done = board.get_by_role("region", name="Done today")
        expect(done.locator(f"#card-{order.pk}")).to_contain_text(order.number)
        expect(done.locator(f"#card-{order.pk} .card-status")).to_contain_text("Delivered")
    finally:
        staff_context.close()
        driver_context.close()

    assert_valid_html(*documents)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    stop = order.route_stops.get(is_current=True)
    assert stop.status == "delivered"
    assert stop.photo.name.endswith(".png")
    with stop.photo.open("rb") as stored:
        assert stored.read() == _png()
