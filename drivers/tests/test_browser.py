"""Driver pages in a real browser at 390 and 1280 px: the driver takes an offer through to
delivery, and every driver page passes axe-core and the Nu HTML checker."""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from drivers import services
from drivers.tests.factories import make_driver, make_finished_trip, make_ready_order
from orders.services import order_accept, order_start_picking
from portal.tests.browser.conftest import assert_accessible, assert_valid_html, log_in
from portal.tests.factories import PASSWORD, make_mall, make_order, make_store, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _world():
    mall = make_mall(name="Fashion Show", time_zone="America/Phoenix", parking_instructions="Level P2")
    store = make_store(mall=mall, name="Zara", pickup_instructions="Back counter")
    order = make_ready_order(
        store=store, packages=2, latitude=Decimal("36.150000"), longitude=mall.longitude, requires_pin=False
    )
    driver = _driver_online_at(mall)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    return store, order, driver, route


def _driver_online_at(mall):
    """driver-lv-1 (Ana), online at the mall."""
    return make_driver(
        market=mall.market,
        online=True,
        user=make_user("driver-lv-1", first_name="Ana"),
        latitude=mall.latitude,
        longitude=mall.longitude,
    )


def _hand_over(store, order, route):
    offer = route.offers.get(status="accepted")
    labels = [package.label_code for package in order.packages.all()]
    services.handoff_confirm_packages(store=store, code=offer.pickup_code, labels=labels, acting_user=None)


def _fits(page: Page) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_driver_takes_offer_through_to_delivery(page: Page, tmp_path) -> None:
    store, order, _driver, route = _world()
    photo = tmp_path / "door.jpg"
    Image.new("RGB", (8, 8), "white").save(photo, "JPEG")

    log_in(page, "driver-lv-1", PASSWORD)
    page.goto("/driver/")
    offers = page.get_by_role("region", name="Offers")
    expect(offers.locator("article")).to_contain_text("Fashion Show")
    expect(offers.locator("[data-countdown]")).to_contain_text(" s left")
    assert_accessible(page)
    _fits(page)

    offers.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Route at Fashion Show")
    code = route.offers.get(status="accepted").pickup_code
    expect(page.locator(".pickup-digits")).to_have_text(code)
    expect(page.get_by_role("img", name=f"QR code for pickup code {code}")).to_be_visible()
    assert_accessible(page)
    _fits(page)

    _hand_over(store, order, route)
    page.reload()
    page.get_by_label("Photo of the package at the door").set_input_files(str(photo))
    page.get_by_role("button", name="Delivered").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Order {order.number} delivered.")
    assert_accessible(page)
    order.refresh_from_db()
    assert order.status == "delivered"


def test_driver_pages_pass_nu_html_checker() -> None:
    store, order, driver, route = _world()
    client = Client()
    client.force_login(driver.user)
    documents = [("home with offer", client.get("/driver/").content.decode())]
    services.offer_accept(offer=route.offers.get(), driver=driver)
    documents.append(("route assigned", client.get(f"/driver/routes/{route.pk}/").content.decode()))
    _hand_over(store, order, route)
    documents.append(("route picked up", client.get(f"/driver/routes/{route.pk}/").content.decode()))
    bad = client.post("/driver/online/", {"market": driver.home_market.pk, "latitude": "x", "longitude": "1"})
    documents.append(("online form errors", bad.content.decode()))
    tomorrow = (timezone.now().astimezone(driver.home_market.tz) + dt.timedelta(days=1)).date().isoformat()
    client.post("/driver/shifts/", {"day": tomorrow, "starts": "22:00", "ends": "02:00"})
    documents.append(("home with a shift", client.get("/driver/").content.decode()))
    bad_shift = client.post("/driver/shifts/", {"day": "", "starts": "17:00", "ends": "17:00"})
    documents.append(("shift form errors", bad_shift.content.decode()))
    buffer = io.BytesIO(b"not an image")
    buffer.name = "x.jpg"
    stop = route.stops.get()
    documents.append(
        ("deliver form errors", client.post(f"/driver/stops/{stop.pk}/deliver/", {"photo": buffer}).content.decode())
    )
    no_reason = client.post(f"/driver/stops/{stop.pk}/undeliverable/", {"reason": " "})
    documents.append(("could-not-deliver form errors", no_reason.content.decode()))
    client.post(f"/driver/stops/{stop.pk}/undeliverable/", {"reason": "Gate locked"})
    home = client.get("/driver/").content.decode()
    documents.append(("home with a package to bring back", home))

    assert "Bring back to the store" in home
    assert_valid_html(*documents)


def test_packing_stops_and_partial_forfeit_pass_axe_and_nu_checker(page: Page) -> None:
    mall = make_mall(name="Fashion Show", time_zone="America/Phoenix")
    zara, nike = make_store(mall=mall, name="Zara"), make_store(mall=mall, name="Nike")
    ready = make_ready_order(store=zara, latitude=Decimal("36.150000"), longitude=mall.longitude)
    # Nike is still picking its order, due packed in 10 minutes.
    packing = make_order(
        store=nike,
        placed_at=timezone.now() - dt.timedelta(minutes=20),
        deliver_in=dt.timedelta(hours=4),
        latitude=Decimal("36.152000"),
        longitude=mall.longitude,
    )
    order_accept(order=packing, acting_user=None)
    order_start_picking(order=packing, acting_user=None)
    # Eight miles out: the driver cannot be at the mall before Nike is done.
    driver = make_driver(
        market=mall.market,
        online=True,
        user=make_user("driver-lv-1", first_name="Ana"),
        latitude=mall.latitude + Decimal("0.116000"),
        longitude=mall.longitude,
    )
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    client = Client()
    client.force_login(driver.user)
    documents = [("offer with a store still packing", client.get("/driver/").content.decode())]

    log_in(page, "driver-lv-1", PASSWORD)
    page.goto("/driver/")
    offers = page.get_by_role("region", name="Offers")
    expect(offers.locator("article")).to_contain_text("Still being packed: Nike (ready about ")
    assert_accessible(page)
    _fits(page)
    offers.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Route at Fashion Show")
    expect(page.locator(".offer-packing")).to_contain_text("Still being packed: ready about ")
    assert_accessible(page)
    _fits(page)
    documents.append(("route with a store still packing", client.get(f"/driver/routes/{route.pk}/").content.decode()))

    _hand_over(zara, ready, route)
    page.reload()
    give_back = page.get_by_role("button", name="Give back the stores not yet visited")
    expect(give_back).to_be_visible()
    assert_accessible(page)
    _fits(page)
    documents.append(("route under way, part to give back", client.get(f"/driver/routes/{route.pk}/").content.decode()))
    # It asks first; cancelling gives nothing back, accepting does.
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    give_back.click()
    expect(give_back).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    give_back.click()
    expect(page.get_by_role("status").first).to_contain_text("You gave back the stores you had not visited.")
    assert questions == ["Give back the stores you have not visited yet? They go to other drivers at once."]
    expect(page.get_by_role("heading", name="Nike")).to_have_count(0)
    assert_accessible(page)
    documents.append(("route after giving part back", client.get(f"/driver/routes/{route.pk}/").content.decode()))

    assert_valid_html(*documents)


@pytest.mark.parametrize("width", [390], indirect=True)
def test_driver_schedules_and_cancels_a_shift_on_a_phone(page: Page) -> None:
    from drivers.models import DriverShift

    driver = make_driver(
        market=make_mall(time_zone="America/Phoenix").market, user=make_user("driver-shifts", first_name="Ana")
    )
    tz = driver.home_market.tz
    tomorrow = (timezone.now().astimezone(tz) + dt.timedelta(days=1)).date()
    starts_at = dt.datetime.combine(tomorrow, dt.time(17), tzinfo=tz)
    label = DriverShift(market=driver.home_market, starts_at=starts_at, ends_at=starts_at + dt.timedelta(hours=4))
    label = label.local_label()

    log_in(page, "driver-shifts", PASSWORD)
    page.goto("/driver/")
    shifts = page.get_by_role("region", name="Shifts")
    expect(shifts).to_contain_text("No shifts scheduled.")
    shifts.get_by_label("Date").fill(tomorrow.isoformat())
    shifts.get_by_label("Start time").fill("17:00")
    shifts.get_by_label("End time").fill("21:00")
    shifts.get_by_role("button", name="Schedule shift").click()

    expect(shifts.get_by_role("status")).to_have_text(f"Shift scheduled: {label}.")
    expect(shifts.get_by_role("listitem")).to_have_count(1)
    expect(shifts.get_by_role("listitem")).to_contain_text(label)
    assert_accessible(page)
    _fits(page)

    # The same shift again: the refusal shows in the card, next to the form.
    shifts.get_by_label("Date").fill(tomorrow.isoformat())
    shifts.get_by_label("Start time").fill("18:00")
    shifts.get_by_label("End time").fill("19:00")
    shifts.get_by_role("button", name="Schedule shift").click()
    expect(shifts.get_by_role("alert")).to_have_text(f"That overlaps your shift {label}.")
    assert_accessible(page)

    # A date left out: the error sits by the field, which gets the focus.
    shifts.get_by_label("Date").fill("")
    shifts.get_by_role("button", name="Schedule shift").click()
    expect(shifts.get_by_label("Date")).to_be_focused()
    expect(shifts.get_by_label("Date")).to_have_accessible_description("This field is required.")
    assert_accessible(page)

    # By keyboard: the card comes back with the focus on its heading.
    shifts.get_by_role("button", name=f"Cancel shift {label}").focus()
    page.keyboard.press("Enter")
    expect(shifts.get_by_role("status")).to_have_text(f"Shift {label} cancelled.")
    expect(shifts.get_by_role("heading", name="Shifts")).to_be_focused()
    expect(shifts).to_contain_text("No shifts scheduled.")
    assert_accessible(page)
    _fits(page)
    assert DriverShift.objects.count() == 0


def test_driver_admin_pages_pass_axe_for_an_operator(page: Page) -> None:
    driver = make_driver(user=make_user("driver-listed", first_name="Ana"))
    tz = driver.home_market.tz
    starts_at = dt.datetime.combine(timezone.now().astimezone(tz).date() + dt.timedelta(days=1), dt.time(17), tzinfo=tz)
    services.driver_shift_schedule(
        driver=driver, starts_at=starts_at, ends_at=starts_at + dt.timedelta(hours=4), now=timezone.now()
    )
    make_user("olivia", is_staff=True, is_superuser=True)
    log_in(page, "olivia", PASSWORD)

    for url in ["/admin/drivers/driver/", "/admin/drivers/drivershift/", f"/admin/drivers/driver/{driver.pk}/change/"]:
        page.goto(url)
        expect(page.locator("#content")).to_contain_text("Ana")
        assert_accessible(page)
    page.goto(f"/admin/drivers/driver/{driver.pk}/status/")
    page.get_by_role("radio", name="Pause: inactive").check()
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_role("alert")).to_have_text("Give a reason: the driver sees it.")
    assert_accessible(page)


def test_offers_refresh_keeps_the_keyboard_on_the_focused_offer_button(page: Page) -> None:
    _store, _order, _driver, route = _world()
    offer = route.offers.get()
    log_in(page, "driver-lv-1", PASSWORD)
    page.goto("/driver/")
    offers = page.get_by_role("region", name="Offers")
    decline = offers.get_by_role("button", name="Decline")
    decline.focus()

    # What the 10 s poll does, now: the section is fetched again and swapped whole.
    page.evaluate(
        """() => new Promise((resolve) => {
            document.body.addEventListener("htmx:afterSettle", () => resolve(), { once: true });
            htmx.ajax("GET", "/driver/", { source: "#offers", target: "#offers", swap: "outerHTML" });
        })"""
    )

    assert page.evaluate("document.activeElement.id") == f"offer-{offer.pk}-decline"
    expect(decline).to_be_focused()


def test_offers_come_first_and_a_new_one_is_named_in_the_new_offers_log(page: Page) -> None:
    mall = make_mall(name="Fashion Show", time_zone="America/Phoenix")
    store = make_store(mall=mall, name="Zara")
    _driver_online_at(mall)
    log_in(page, "driver-lv-1", PASSWORD)
    page.set_viewport_size({"width": 360, "height": 640})
    page.goto("/driver/")
    headings = page.get_by_role("heading", level=2).all_inner_texts()
    news = page.get_by_role("log", name="New offers")
    expect(news).to_be_empty()

    make_ready_order(store=store, packages=1, latitude=Decimal("36.150000"), longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    page.evaluate(
        """() => new Promise((resolve) => {
            document.body.addEventListener("htmx:afterSettle", () => resolve(), { once: true });
            htmx.ajax("GET", "/driver/", { source: "#offers", target: "#offers", swap: "outerHTML" });
        })"""
    )

    assert headings[0] == "Offers"
    pay = f"${route.offers.get().pay_cents / 100:.2f}"
    expect(news).to_have_text(f"New offer: {pay} · Fashion Show")


def test_route_check_in_by_keyboard_keeps_focus_on_the_stores_button(page: Page) -> None:
    _store, _order, driver, route = _world()
    services.offer_accept(offer=route.offers.get(), driver=driver)
    log_in(page, "driver-lv-1", PASSWORD)
    page.goto(f"/driver/routes/{route.pk}/")
    button = page.get_by_role("button", name="I am at the counter")
    button.focus()

    page.keyboard.press("Enter")

    expect(page.locator("#route .message-success")).to_have_text(
        "Checked in at Zara: show your pickup code at the counter."
    )
    expect(button).to_be_focused()


def test_offer_decline_by_keyboard_leaves_focus_on_the_offers_heading(page: Page) -> None:
    _world()
    log_in(page, "driver-lv-1", PASSWORD)
    page.goto("/driver/")
    page.get_by_role("region", name="Offers").get_by_role("button", name="Decline").focus()

    page.keyboard.press("Enter")

    expect(page.locator("#offers .message-success")).to_have_text("Offer declined.")
    expect(page.get_by_role("heading", name="Offers")).to_be_focused()


def test_offer_countdown_follows_the_servers_clock_not_a_phone_clock_two_minutes_fast(page: Page) -> None:
    _world()
    log_in(page, "driver-lv-1", PASSWORD)
    page.clock.install(time=timezone.now() + dt.timedelta(minutes=2))
    page.goto("/driver/")
    countdown = page.get_by_role("region", name="Offers").locator("[data-countdown]")
    # The script has counted once (it keeps the server's clock time and counts the seconds).
    page.wait_for_function("document.querySelector('[data-countdown]').clockText !== undefined")
    page.clock.run_for(2000)

    # Read once, not retried: the 10 s refresh would bring the server's text back for a moment.
    text = countdown.text_content()
    counted = re.fullmatch(r"\d{1,2}:\d\d:\d\d [AP]M \((\d+) s left\)", text)
    assert counted and int(counted.group(1)) > 50, text
    assert page.get_by_role("region", name="Offers").get_by_role("button", name="Accept").is_enabled()


def test_route_page_with_a_long_link_in_the_delivery_note_fits_a_phone(page: Page) -> None:
    store, order, driver, route = _world()
    note = "Gate code on https://maps.example.com/buildings/fashion-show-residences-tower-b/entrances/north-gate"
    type(order).objects.filter(pk=order.pk).update(delivery_instructions=note)
    services.offer_accept(offer=route.offers.get(), driver=driver)
    _hand_over(store, order, route)
    log_in(page, "driver-lv-1", PASSWORD)

    page.goto(f"/driver/routes/{route.pk}/")

    expect(page.get_by_text(f"Note: {note}")).to_be_visible()
    _fits(page)


def test_route_check_in_notice_goes_to_a_live_region_already_on_the_page(page: Page) -> None:
    _store, _order, driver, route = _world()
    services.offer_accept(offer=route.offers.get(), driver=driver)
    log_in(page, "driver-lv-1", PASSWORD)
    page.goto(f"/driver/routes/{route.pk}/")
    # Screen readers speak changes to a live region they already know, not one that arrives with
    # the swapped content: remember the page's live regions before the click.
    page.evaluate("window.liveBefore = Array.from(document.querySelectorAll('[role=status]'))")

    page.get_by_role("button", name="I am at the counter").click()

    expect(page.locator("#route .message-success")).to_have_text(
        "Checked in at Zara: show your pickup code at the counter."
    )
    spoken = page.evaluate("window.liveBefore.filter((el) => el.isConnected).map((el) => el.textContent.trim())")
    assert "Checked in at Zara: show your pickup code at the counter." in spoken


def test_offer_decline_notice_goes_to_a_live_region_already_on_the_page(page: Page) -> None:
    _world()
    log_in(page, "driver-lv-1", PASSWORD)
    page.goto("/driver/")
    page.evaluate("window.liveBefore = Array.from(document.querySelectorAll('[role=status]'))")

    page.get_by_role("region", name="Offers").get_by_role("button", name="Decline").click()

    expect(page.locator("#offers .message-success")).to_have_text("Offer declined.")
    spoken = page.evaluate("window.liveBefore.filter((el) => el.isConnected).map((el) => el.textContent.trim())")
    assert "Offer declined." in spoken


def test_trips_and_pay_page_passes_axe_and_nu_checker_and_pages_by_keyboard(page: Page) -> None:
    mall = make_mall(name="Fashion Show", time_zone="America/Los_Angeles")
    driver = make_driver(market=mall.market, user=make_user("driver-lv-1", first_name="Ana"))
    client = Client()
    client.force_login(driver.user)
    empty = client.get("/driver/trips/").content.decode()
    now = timezone.now()
    make_finished_trip(driver, mall, closed_at=now, pay_cents=2450, wait_cents=150, bump_cents=200)
    for minutes in range(1, 21):
        make_finished_trip(driver, mall, closed_at=now - dt.timedelta(minutes=minutes), pay_cents=1000)

    log_in(page, "driver-lv-1", PASSWORD)
    page.goto("/driver/")
    page.get_by_role("navigation", name="Driver").get_by_role("link", name="Trips and pay").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Trips and pay")
    expect(page.get_by_role("link", name="Trips and pay")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name=re.compile(r"^Today · \$224\.50, 21 trips$"))).to_be_visible()
    expect(page.locator(".trip")).to_have_count(20)
    assert_accessible(page)
    _fits(page)

    older = page.get_by_role("link", name="Older trips")
    older.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    expect(page.locator(".trip")).to_have_count(1)
    assert_accessible(page)
    _fits(page)

    assert_valid_html(("trips, none yet", empty), ("trips, first page", client.get("/driver/trips/").content.decode()))


def test_offer_answer_being_sent_leaves_neither_button_to_tap(page: Page) -> None:
    _store, _order, _driver, route = _world()
    held = []
    log_in(page, "driver-lv-1", PASSWORD)
    page.goto("/driver/")
    offer = page.get_by_role("region", name="Offers").locator("article")
    page.route(re.compile(r"/driver/offers/\d+/accept/$"), lambda request: held.append(request))

    offer.get_by_role("button", name="Accept").click()
    expect(offer.get_by_role("button", name="Accept")).to_be_disabled()
    expect(offer.get_by_role("button", name="Decline")).to_be_disabled()
    assert route.offers.get().status == "open"

    held[0].continue_()
    expect(page.get_by_role("heading", level=1)).to_have_text("Route at Fashion Show")
    assert route.offers.get().status == "accepted"


def test_offer_running_out_while_its_button_has_focus_moves_focus_to_offers_and_says_so(page: Page) -> None:
    _store, _order, _driver, route = _world()
    offer = route.offers.get()
    log_in(page, "driver-lv-1", PASSWORD)
    offer.due_at = timezone.now() + dt.timedelta(seconds=5)
    offer.save(update_fields=["due_at"])
    page.goto("/driver/")
    offers = page.get_by_role("region", name="Offers")
    accept = offers.get_by_role("button", name="Accept")
    accept.focus()

    expect(accept).to_be_disabled(timeout=10_000)
    expect(page.get_by_role("heading", name="Offers")).to_be_focused()
    expect(page.locator("#offers-status")).to_have_text(
        f"Time to answer is up: ${offer.pay_cents / 100:,.2f} · Fashion Show."
    )
