"""The store handoff in a real browser: staff type the driver's pickup code, tick and scan the
packages and see the confirmation while the board moves the order on; the camera reads a real QR
code (Chromium's fake camera playing one); the pages pass axe at 390 and 1280 px and the Nu
checker."""

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from drivers import services as driver_services
from drivers.tests.factories import make_driver, make_ready_order
from orders.lifecycle import OrderStatus
from portal.tests.browser import conftest as harness
from portal.tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, assert_accessible, assert_valid_html, log_in
from portal.tests.factories import PASSWORD, make_mall, make_staff, make_store, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# The browser harness's fixtures, shared with portal/tests/browser/ (pytest finds them by name here).
browser, width, page = harness.browser, harness.width, harness.page


def _world():
    mall = make_mall(name="Fashion Show", time_zone="America/Los_Angeles")
    store = make_store(mall=mall, name="Zara")
    order = make_ready_order(
        store=store, packages=2, latitude=mall.latitude + Decimal("0.03"), longitude=mall.longitude
    )
    driver = make_driver(
        market=mall.market,
        online=True,
        user=make_user("ana", first_name="Ana"),
        latitude=mall.latitude,
        longitude=mall.longitude,
    )
    [route] = driver_services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    driver_services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    staff = make_staff(store=store, user=make_user("dana")).user
    labels = sorted(package.label_code for package in order.packages.all())
    return store, order, staff, offer.pickup_code, labels


def _fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_staff_hands_packages_to_driver_by_typing_code(page: Page) -> None:
    _store, order, _staff, code, labels = _world()
    log_in(page, "dana", PASSWORD)
    ready = page.get_by_role("region", name="Ready for pickup")
    expect(ready.locator("article")).to_contain_text(order.number)

    ready.get_by_role("link", name="Hand over to driver").click()
    panel = page.locator("#order-panel")
    panel.get_by_label("Driver's pickup code").fill(code)
    panel.get_by_role("button", name="Check code").click()
    expect(panel.get_by_text("Driver Ana")).to_be_visible()
    first = panel.get_by_role("checkbox", name=re.compile(labels[0]))
    second = panel.get_by_role("checkbox", name=re.compile(labels[1]))
    first.check()
    panel.get_by_label("Scan or type a label code").fill(labels[1].lower())
    panel.get_by_label("Scan or type a label code").press("Enter")
    expect(second).to_be_checked()
    expect(panel.locator("[data-scan-status]")).to_have_text(f"Ticked {labels[1]}. All packages ticked.")
    _fits(page)
    panel.get_by_role("button", name="Hand over to Ana").click()

    expect(page.get_by_role("status").filter(has_text="Handed")).to_have_text(
        f"Handed 2 packages to Ana: {labels[0]}, {labels[1]}."
    )
    expect(ready.locator("article")).to_have_count(0)
    expect(page.get_by_role("region", name="Done today")).to_contain_text(order.number)
    order.refresh_from_db()
    assert order.status == OrderStatus.PICKED_UP


def test_handoff_wrong_label_blocks_with_message(page: Page) -> None:
    _store, order, _staff, code, labels = _world()
    log_in(page, "dana", PASSWORD)
    page.goto("/store/handoff/")
    panel = page.locator("#order-panel")
    panel.get_by_label("Driver's pickup code").fill(code)
    panel.get_by_role("button", name="Check code").click()
    scan = panel.get_by_label("Scan or type a label code")

    scan.fill(f"{labels[0]} MR-NOT-HERE")
    scan.press("Enter")
    expect(panel.locator("[data-scan-status]")).to_have_text(
        "Label MR-NOT-HERE is not in this pickup: set that package aside."
    )
    panel.get_by_role("checkbox", name=re.compile(labels[1])).check()
    panel.get_by_role("button", name="Hand over to Ana").click()

    expect(panel.get_by_role("alert")).to_contain_text("Label MR-NOT-HERE is not part of")
    assert_accessible(page)
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_handoff_camera_refused_says_so_and_typing_still_works(page: Page) -> None:
    _store, _order, _staff, code, _labels = _world()
    log_in(page, "dana", PASSWORD)
    page.goto("/store/handoff/")
    panel = page.locator("#order-panel")

    panel.get_by_role("button", name="Scan with camera").click()

    expect(panel.locator("[data-scan-status]")).to_have_text(re.compile("type the code", re.IGNORECASE))
    expect(panel.locator("[data-scanner]")).to_be_hidden()
    panel.get_by_label("Driver's pickup code").fill(code)
    panel.get_by_role("button", name="Check code").click()
    expect(panel.get_by_text("Driver Ana")).to_be_visible()


def _fake_camera_video(path: Path, qr_png: bytes) -> Path:
    """One Y4M frame (what Chromium's fake camera plays in a loop): the QR image, grey on white."""
    frame = Image.new("L", (640, 480), 255)
    qr = Image.open(io.BytesIO(qr_png)).convert("L")
    qr.thumbnail((440, 440))
    frame.paste(qr, ((640 - qr.width) // 2, (480 - qr.height) // 2))
    chroma = bytes([128]) * (320 * 240)
    path.write_bytes(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\nFRAME\n" + frame.tobytes() + chroma + chroma)
    return path


@contextmanager
def _camera_page(browser: Browser, live_server, video: Path) -> Iterator[Page]:
    """A store device whose camera sees `video`: its own Chromium, since the fake camera is a
    launch flag."""
    camera_browser = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = camera_browser.new_context(viewport={"width": 390, "height": 900}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        log_in(page, "dana", PASSWORD)
        yield page
    finally:
        camera_browser.close()


def _screenshot(browser: Browser, live_server, *, username: str, path: str, locator: str) -> bytes:
    context = browser.new_context(viewport={"width": 390, "height": 900}, base_url=live_server.url)
    try:
        page = context.new_page()
        log_in(page, username, PASSWORD)
        page.goto(path)
        return page.locator(locator).first.screenshot()
    finally:
        context.close()


def test_handoff_camera_reads_qr_on_drivers_phone(browser: Browser, live_server, tmp_path) -> None:
    _store, order, _staff, code, labels = _world()
    route = order.route_stops.get().route
    qr_png = _screenshot(browser, live_server, username="ana", path=f"/driver/routes/{route.pk}/", locator=".pickup-qr")
    video = _fake_camera_video(tmp_path / "driver-phone.y4m", qr_png)

    with _camera_page(browser, live_server, video) as page:
        page.goto("/store/handoff/")
        panel = page.locator("#order-panel")

        panel.get_by_role("button", name="Scan with camera").click()

        expect(panel.get_by_text("Driver Ana")).to_be_visible()
        expect(panel.get_by_role("checkbox")).to_have_count(len(labels))


def test_handoff_camera_scanned_label_ticks_its_box_and_board_poll_keeps_camera(
    browser: Browser, live_server, tmp_path
) -> None:
    _store, order, _staff, code, labels = _world()
    first = order.packages.get(sequence=1).label_code
    qr_png = _screenshot(
        browser, live_server, username="dana", path=f"/store/orders/{order.pk}/labels/", locator=".label svg"
    )
    video = _fake_camera_video(tmp_path / "label.y4m", qr_png)

    with _camera_page(browser, live_server, video) as page:
        page.goto("/store/handoff/")
        panel = page.locator("#order-panel")
        panel.get_by_label("Driver's pickup code").fill(code)
        panel.get_by_role("button", name="Check code").click()

        panel.get_by_role("button", name="Scan labels with camera").click()

        expect(panel.get_by_role("checkbox", name=re.compile(first))).to_be_checked()
        expect(panel.locator("[data-scan-status]")).to_have_text(f"Ticked {first}. 1 to go.")
        other = next(label for label in labels if label != first)
        expect(panel.get_by_role("checkbox", name=re.compile(other))).not_to_be_checked()
        with page.expect_response(lambda r: "/store/?since=" in r.url, timeout=20_000):
            pass
        expect(panel.locator("[data-scanner] video")).to_be_visible()

        # By keyboard: the camera's Stop button has the focus while it runs; Escape (or Stop)
        # turns it off and gives the focus back to the button that started it.
        scan = panel.get_by_role("button", name="Scan labels with camera")
        expect(panel.get_by_role("button", name="Stop camera")).to_be_focused()
        page.keyboard.press("Escape")
        expect(panel.locator("[data-scanner] video")).to_be_hidden()
        expect(scan).to_be_focused()
        page.keyboard.press("Enter")
        expect(panel.get_by_role("button", name="Stop camera")).to_be_focused()
        page.keyboard.press("Enter")
        expect(panel.locator("[data-scan-status]")).to_have_text("Camera off.")
        expect(scan).to_be_focused()


def test_handoff_pages_pass_axe(page: Page) -> None:
    _store, _order, _staff, code, _labels = _world()
    log_in(page, "dana", PASSWORD)
    page.goto("/store/handoff/")
    panel = page.locator("#order-panel")
    assert_accessible(page)
    _fits(page)

    panel.get_by_label("Driver's pickup code").fill("000001" if code != "000001" else "000002")
    panel.get_by_role("button", name="Check code").click()
    expect(panel.get_by_role("alert")).to_contain_text("No driver has this pickup code")
    assert_accessible(page)

    panel.get_by_label("Driver's pickup code").fill(code)
    panel.get_by_role("button", name="Check code").click()
    expect(panel.get_by_text("Driver Ana")).to_be_visible()
    assert_accessible(page)
    _fits(page)

    panel.get_by_role("button", name="Hand over to Ana").click()
    expect(panel.get_by_role("alert")).to_contain_text("Missing package")
    assert_accessible(page)


def test_handoff_pages_pass_nu_html_checker() -> None:
    _store, _order, staff, code, labels = _world()
    client = Client()
    client.force_login(staff)

    documents = [
        ("handoff code step", client.get("/store/handoff/").content.decode()),
        ("handoff bad code", client.post("/store/handoff/", {"code": "12"}).content.decode()),
        ("handoff packages", client.post("/store/handoff/", {"code": code}).content.decode()),
        (
            "handoff missing package",
            client.post("/store/handoff/confirm/", {"code": code, "labels": labels[:1]}).content.decode(),
        ),
    ]
    client.post("/store/handoff/confirm/", {"code": code, "labels": labels})
    documents.append(("handoff done", client.get("/store/handoff/").content.decode()))

    assert_valid_html(*documents)
