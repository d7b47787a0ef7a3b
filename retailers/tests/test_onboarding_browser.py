"""Store onboarding end to end in a real browser (issue 6 point 7): a seller applies on /join/, an
operator approves in the admin, the manager sets a password from the email link, completes the
checklist (pickup instructions, an associate invited who sets their password, the agreement, a
training order through the board, labels and the handoff to the demo driver), the operator takes
the store live and its orders appear on the board. Every onboarding page passes axe-core (no
serious/critical) at 390 px (and 1280 px for the store pages) and the Nu HTML checker."""

import datetime as dt
import re
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Browser, BrowserContext, Page, expect

from orders.lifecycle import OrderStatus
from orders.models import Order
from portal.notifications.models import Notification
from portal.tests.browser import conftest as harness
from portal.tests.browser.conftest import assert_accessible, assert_valid_html, log_in
from portal.tests.factories import PASSWORD, make_listing, make_mall, make_market, make_order, make_stock, make_user
from retailers import onboarding
from retailers.models import ProgramAgreement, StaffRole, Store, StoreStatus, Weekday

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# The browser harness's fixtures, shared with portal/tests/browser/ (pytest finds them by name here).
browser, width, page = harness.browser, harness.width, harness.page

MANAGER_PASSWORD = "counter-lamp-orbit-42"
ASSOCIATE_PASSWORD = "shelf-river-tulip-17"
PUBLISHED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fresh_cache():
    # /join/ rate-limits per IP in the cache; every test starts with a clean slate.
    cache.clear()


@pytest.fixture
def world():
    mall = make_mall(name="Fashion Show", market=make_market(name="Las Vegas"), time_zone="America/Los_Angeles")
    ProgramAgreement.objects.all().delete()  # the one the migration published, when it is still there
    ProgramAgreement.objects.create(
        version="2026.1", text="Pack on time.\n\nHand packages only to the right driver.", published_at=PUBLISHED
    )
    make_user("olga", first_name="Olga", last_name="Operator", is_staff=True, is_superuser=True)
    return mall


@pytest.fixture
def phone(browser: Browser, live_server) -> Iterator[Callable[[], Page]]:
    """New 390 px browser contexts, one per person (their own cookies), closed at the end."""
    contexts: list[BrowserContext] = []

    def open_page() -> Page:
        context = browser.new_context(viewport={"width": 390, "height": 900}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def _invitation_link(email: str) -> str:
    row = Notification.objects.filter(kind="store.invitation", body__contains=email).order_by("-pk").first()
    if row is None:  # the email names the person, not always their address: find them by recipient
        row = Notification.objects.filter(kind="store.invitation").order_by("-pk").first()
    return re.search(r"https?://[^/\s]+(/accounts/invite/\S+/)", row.body).group(1)


def _fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def _check(page: Page, documents: list[tuple[str, str]], name: str) -> None:
    """axe on the page as the person sees it; the served HTML kept for one Nu run at the end."""
    assert_accessible(page)
    _fits(page)
    documents.append((name, page.request.get(page.url).text()))


def _apply(page: Page, documents: list) -> None:
    page.goto("/join/")
    page.get_by_label("Marketplace seller id").fill("A1B2C3D4E5")
    page.get_by_label("Business name").fill("Sunset Retail LLC")
    page.get_by_label("Store name").fill("Sunset Shoes")
    page.get_by_label("Mall").select_option(label="Fashion Show (Las Vegas)")
    page.get_by_label("Unit number").fill("L2-214")
    page.get_by_label("Your name").fill("Pat Lee")
    page.get_by_label("Email").fill("pat@example.com")
    page.get_by_label("Phone").fill("(702) 555-0134")
    for day in Weekday:
        group = page.get_by_role("group", name=day.label)
        group.get_by_label("Opens").fill("10:00")
        group.get_by_label("Closes").fill("21:00")
    page.get_by_label("Shoes").check()
    page.get_by_label("Estimated same-day orders per day").fill("25")
    assert_accessible(page)
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your application is on its way")
    assert_accessible(page)


def _approve(page: Page) -> None:
    log_in(page, "olga", PASSWORD)
    page.goto("/admin/retailers/storeapplication/?status__exact=applied")
    page.locator("#result_list tbody a").first.click()
    page.get_by_role("link", name="Approve…").click()
    page.get_by_role("button", name=re.compile("^Approve application")).click()
    expect(page.locator(".messagelist")).to_contain_text("Sunset Shoes is onboarding and pat@example.com was invited")


def _set_password(page: Page, link: str, password: str) -> None:
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password confirmation").fill(password)
    page.get_by_role("button", name="Set password and log in").click()


def _item(page: Page, key: str):
    return page.locator(f"#item-{key}")


def test_store_onboarding_end_to_end(world, phone) -> None:
    documents: list[tuple[str, str]] = []

    # A seller applies; an operator approves; the applicant is invited as manager.
    applicant = phone()
    _apply(applicant, documents)
    operator = phone()
    _approve(operator)
    store = Store.objects.get(name="Sunset Shoes")
    assert store.status == StoreStatus.ONBOARDING

    # The manager sets a password from the email link and lands on the checklist.
    manager = phone()
    _set_password(manager, _invitation_link("pat@example.com"), MANAGER_PASSWORD)
    expect(manager.get_by_role("heading", level=1)).to_contain_text("Getting ready for same-day")
    expect(manager.locator(".progress-label")).to_have_text("1 of 5 done")  # the hours came with the application
    expect(_item(manager, "hours")).to_have_class(re.compile("is-done"))
    _check(manager, documents, "onboarding, new store")

    # Pickup instructions, written on the settings page the checklist links to.
    _item(manager, "pickup").get_by_role("link", name="Write pickup instructions").click()
    manager.get_by_label("Pickup instructions for drivers").fill("Back counter by the fitting rooms; ring the bell.")
    manager.get_by_role("button", name="Save settings").click()
    expect(manager.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()
    manager.get_by_role("navigation", name="Store").get_by_role("link", name="Onboarding").click()
    expect(manager.locator(".progress-label")).to_have_text("2 of 5 done")

    # The team: invite an associate, who sets a password and logs in.
    _item(manager, "team").get_by_role("link", name="Invite your team").click()
    expect(manager.get_by_role("heading", level=1)).to_contain_text("Team")
    _check(manager, documents, "team")
    manager.get_by_label("Email address").fill("not-an-email")
    manager.get_by_role("button", name="Send invitation").click()
    expect(manager.get_by_text("Enter a valid email address, like name@example.com.")).to_be_visible()
    assert_accessible(manager)  # the error state; its HTML is checked in the Nu test below
    manager.get_by_label("Email address").fill("ari@example.com")
    manager.get_by_label("Name (optional)").fill("Ari Diaz")
    manager.get_by_role("button", name="Send invitation").click()
    expect(manager.get_by_role("status").filter(has_text="Invitation sent to ari@example.com.")).to_be_visible()
    expect(manager.get_by_text("Invited: has not set a password yet")).to_be_visible()

    associate = phone()
    _set_password(associate, _invitation_link("ari@example.com"), ASSOCIATE_PASSWORD)
    expect(associate.get_by_text("Only a store manager can complete these steps.")).to_be_visible()
    expect(associate.get_by_role("button", name="Start a training order")).to_have_count(0)
    _check(associate, documents, "onboarding, associate")

    manager.get_by_role("navigation", name="Store").get_by_role("link", name="Onboarding").click()
    expect(manager.locator(".progress-label")).to_have_text("3 of 5 done")

    # The program agreement: refused without the tick, then accepted.
    agreement = manager.get_by_role("region", name="Program agreement")
    agreement.get_by_role("button", name="Accept the agreement").click()
    expect(manager.get_by_text("Tick the box to accept the agreement.")).to_be_visible()
    assert_accessible(manager)  # the error state; its HTML is checked in the Nu test below
    manager.get_by_label("I have read the program agreement and accept it on behalf of the store.").check()
    manager.get_by_role("button", name="Accept the agreement").click()
    expect(manager.get_by_text(re.compile("Accepted by Pat Lee on"))).to_be_visible()
    expect(manager.locator(".progress-label")).to_have_text("4 of 5 done")

    # The training order, through the real board.
    manager.get_by_role("button", name="Start a training order").click()
    expect(manager.get_by_role("status").filter(has_text="is on the board under New")).to_be_visible()
    training = Order.objects.get(store=store, is_training=True)
    manager.get_by_role("link", name="Open the board").click()
    manager.get_by_role("link", name=training.number).click()
    manager.get_by_role("button", name="Accept order").click()
    manager.get_by_role("button", name="Start picking").click()
    for line in training.lines.select_related("listing"):
        manager.get_by_label(f"Picked of {line.listing.title}").fill(str(line.quantity))
    manager.get_by_role("button", name="Save picked quantities").click()
    expect(manager.get_by_role("status").filter(has_text="Picked quantities saved.")).to_be_visible()
    manager.get_by_role("button", name="Mark ready").click()
    expect(manager.get_by_role("link", name="Print labels")).to_be_visible()
    manager.get_by_role("link", name="Print labels").click()
    labels = sorted(training.packages.values_list("label_code", flat=True))
    expect(manager.locator("body")).to_contain_text(labels[0])

    # The demo driver comes for it; its pickup code is on the onboarding page.
    manager.goto(reverse("store:onboarding"))
    manager.get_by_role("button", name="Call the demo driver").click()
    code_text = manager.locator("dd .pickup-code")
    expect(code_text).to_have_text(re.compile(r"^\d{6}$"))
    expect(manager.get_by_text("Training driver (demo, not a real person)", exact=True)).to_be_visible()
    _check(manager, documents, "onboarding, demo driver waiting")
    code = code_text.inner_text()

    # The real handoff: the code, then every label.
    manager.get_by_role("link", name="Hand over to driver").first.click()
    panel = manager.locator("#order-panel")
    panel.get_by_label("Driver's pickup code").fill(code)
    panel.get_by_role("button", name="Check code").click()
    for label in labels:
        panel.get_by_role("checkbox", name=re.compile(label)).check()
    panel.get_by_role("button", name="Hand over to Training driver").click()
    expect(manager.get_by_role("status").filter(has_text="Handed")).to_contain_text(labels[0])
    training.refresh_from_db()
    assert training.status == OrderStatus.PICKED_UP

    # The system delivers it (what the beat's training sweeper does every 15 seconds).
    assert onboarding.training_orders_sweep() == 1
    manager.goto(reverse("store:onboarding"))
    expect(manager.locator(".progress-label")).to_have_text("5 of 5 done")
    expect(manager.get_by_text("Delivered: the training order went through end to end.")).to_be_visible()
    expect(manager.get_by_text(re.compile("Everything is done"))).to_be_visible()
    _check(manager, documents, "onboarding, complete")

    # The operator takes the store live from its admin page.
    operator.goto(reverse("admin:retailers_store_change", args=[store.pk]))
    operator.get_by_role("link", name="Go live…").click()
    expect(operator.get_by_text("Onboarding checklist: 5 of 5 done")).to_be_visible()
    assert_accessible(operator)
    operator.get_by_role("button", name="Go live Sunset Shoes").click()
    expect(operator.locator(".messagelist")).to_contain_text("Sunset Shoes is live and takes same-day orders.")
    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE

    # Live: the store takes orders and they appear on its board.
    listing = make_listing(seller=store.seller, title="Trail runner, size 9")
    make_stock(store=store, listing=listing, on_hand=3)
    order = make_order(store=store, lines=[(listing, 1)])
    manager.goto(reverse("store:board"))
    expect(manager.get_by_role("region", name=re.compile("^New")).locator("article")).to_contain_text(order.number)
    expect(manager.get_by_role("navigation", name="Store").get_by_role("link", name="Onboarding")).to_have_count(0)
    manager.goto(reverse("store:store-settings"))
    expect(manager.get_by_text("Taking same-day orders.")).to_be_visible()
    expect(manager.get_by_role("cell", name="Went live")).to_be_visible()

    assert_valid_html(*documents)


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _store_with_people():
    from portal.tests.factories import make_staff, make_store

    store = make_store(name="Sunset Shoes", status=StoreStatus.ONBOARDING)
    manager = make_staff(
        store=store, role=StaffRole.MANAGER, user=make_user("pat", first_name="Pat", last_name="Lee")
    ).user
    associate = make_staff(store=store, user=make_user("ari", first_name="Ari", last_name="Diaz")).user
    ProgramAgreement.objects.all().delete()  # the one the migration published, when it is still there
    ProgramAgreement.objects.create(version="2026.1", text="Pack on time.", published_at=PUBLISHED)
    return store, manager, associate


def test_onboarding_and_team_pages_pass_axe(page: Page) -> None:
    _store, _manager, _associate = _store_with_people()
    log_in(page, "pat", PASSWORD)

    for path in (reverse("store:onboarding"), reverse("store:team")):
        page.goto(path)
        assert_accessible(page)
        _fits(page)
    page.goto(reverse("store:team"))
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Enter the person's email address.")).to_be_visible()
    assert_accessible(page)


def test_team_and_onboarding_buttons_inside_the_page_are_visible(page: Page) -> None:
    # axe leaves white-on-white text "incomplete" (not a violation), so the colours are checked.
    store, manager, _associate = _store_with_people()
    onboarding.training_order_create(store=store, acting_user=manager)
    log_in(page, "pat", PASSWORD)
    colour = "e => getComputedStyle(e).color"

    page.goto(reverse("store:team"))
    change_role = page.get_by_role("button", name="Change role").first.evaluate(colour)
    page.goto(reverse("store:onboarding"))
    open_board = page.get_by_role("link", name="Open the board").evaluate(colour)

    assert (change_role, open_board) == ("rgb(11, 92, 173)", "rgb(11, 92, 173)")  # --brand on white


def test_onboarding_team_and_lifecycle_pages_pass_the_nu_html_checker() -> None:
    store, manager, associate = _store_with_people()
    operator = make_user("olga", is_staff=True, is_superuser=True)
    boss, helper, ops = _client_for(manager), _client_for(associate), _client_for(operator)
    htmx = {"HTTP_HX_REQUEST": "true"}

    pages = [
        ("onboarding", boss.get(reverse("store:onboarding")).content.decode()),
        ("onboarding, associate", helper.get(reverse("store:onboarding")).content.decode()),
        ("agreement error", boss.post(reverse("store:onboarding-agreement"), {"agreement": "1"}).content.decode()),
        ("team", boss.get(reverse("store:team")).content.decode()),
        ("team, invite error", boss.post(reverse("store:team-invite"), {"email": "x"}).content.decode()),
    ]
    fragment = boss.post(reverse("store:onboarding-training"), **htmx).content.decode()
    training = Order.objects.get(is_training=True)
    Order.objects.filter(pk=training.pk).update(status=OrderStatus.READY)
    onboarding.training_order_call_driver(order=training)
    pages += [
        ("onboarding, demo driver", boss.get(reverse("store:onboarding")).content.decode()),
        ("admin store", ops.get(reverse("admin:retailers_store_change", args=[store.pk])).content.decode()),
        ("admin go live", ops.get(reverse("admin:retailers_store_go_live", args=[store.pk])).content.decode()),
        (
            "admin suspend error",
            ops.post(reverse("admin:retailers_store_suspend", args=[store.pk]), {"reason": ""}).content.decode(),
        ),
    ]

    assert fragment.lstrip().startswith('<div id="onboarding"')
    assert_valid_html(*pages)
