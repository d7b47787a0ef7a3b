"""/join/ and the invitation's set-password page in a real browser at 390 and 1280 px: a person
applies by keyboard and mouse, sees field errors announced, gets the thank-you page; every page
passes axe-core (no serious/critical) and the Nu HTML checker."""

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.test import Client
from playwright.sync_api import Page, expect

from portal.notifications.models import Notification
from portal.tests.browser.conftest import (  # noqa: F401
    assert_accessible,
    assert_valid_html,
    browser,
    log_in,
    page,
    width,
)
from portal.tests.factories import PASSWORD, make_mall, make_market, make_store, make_user
from retailers.applications import application_approve, application_reject, application_submit
from retailers.invitations import invite_to_store
from retailers.join_forms import JoinForm
from retailers.models import StaffRole, Store, StoreApplication, StoreStatus, Weekday

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def _fill_application(page: Page) -> None:  # noqa: F811
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
        if day == Weekday.SUNDAY:
            group.get_by_label("Closed").check()
            continue
        group.get_by_label("Opens").fill("10:00")
        group.get_by_label("Closes").fill("01:30" if day == Weekday.FRIDAY else "21:00")
    page.get_by_label("Shoes").check()
    page.get_by_label("Bags and accessories").check()
    page.get_by_label("Estimated same-day orders per day").fill("25")


def test_join_person_applies_sees_errors_then_thanks(page: Page) -> None:  # noqa: F811
    make_mall(name="Fashion Show", market=make_market(name="Las Vegas"))

    page.goto("/join/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bring your mall store to same-day delivery")
    assert_accessible(page)

    page.get_by_role("button", name="Send application").click()
    alert = page.locator("#join-form").get_by_role("alert").first
    expect(alert).to_contain_text("Nothing was sent: correct the fields marked below.")
    expect(page.get_by_label("Marketplace seller id")).to_have_attribute("aria-invalid", "true")
    # Focus (and the view) goes to the first field to correct, not the button at the bottom.
    expect(page.get_by_label("Marketplace seller id")).to_be_focused()
    expect(page.locator("#id_email-error")).to_have_text("Enter your email address.")
    assert_accessible(page)

    _fill_application(page)
    page.get_by_label("Email").fill("pat@")
    page.get_by_role("button", name="Send application").click()
    expect(page.locator("#id_email-error")).to_have_text("Enter a valid email address, like name@example.com.")
    expect(page.get_by_label("Email")).to_be_focused()
    expect(page.get_by_label("Store name")).to_have_value("Sunset Shoes")
    page.get_by_label("Email").fill("pat@example.com")
    page.get_by_role("button", name="Send application").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your application is on its way")
    application = StoreApplication.objects.get()
    expect(page.get_by_text(f"Your application number is {application.reference}.")).to_be_visible()
    assert_accessible(page)
    assert (application.store_name, application.hours["4"], application.hours["6"], application.categories) == (
        "Sunset Shoes",
        ["10:00", "01:30"],
        None,
        ["footwear", "accessories"],
    )
    assert Notification.objects.filter(kind="application.received", to="pat@example.com").count() == 1


def test_join_page_fits_a_phone_without_sideways_scrolling(page: Page) -> None:  # noqa: F811
    make_mall(name="Fashion Show", market=make_market(name="Las Vegas"))

    page.goto("/join/")

    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= page.viewport_size["width"]


def test_invite_set_password_pages_in_the_browser(page: Page) -> None:  # noqa: F811
    store = make_store(name="Sunset Shoes", status=StoreStatus.ONBOARDING)
    invite_to_store(store=store, email="pat@example.com", role=StaffRole.MANAGER, invited_by=make_user("ops"))
    link = re.search(r"https?://[^/\s]+(/accounts/invite/\S+/)", Notification.objects.get().body).group(1)

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    assert_accessible(page)
    page.get_by_label("New password", exact=True).fill("password")
    page.get_by_label("New password confirmation").fill("password")
    page.get_by_role("button", name="Set password and log in").click()
    expect(page.get_by_text("This password is too common.")).to_be_visible()
    assert_accessible(page)

    page.goto("/accounts/invite/MQ/not-a-token/")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    assert_accessible(page)


def test_join_and_invite_pages_pass_the_nu_html_checker() -> None:
    make_mall(name="Fashion Show", market=make_market(name="Las Vegas"))
    store = make_store(name="Sunset Shoes", status=StoreStatus.ONBOARDING)
    invite_to_store(store=store, email="pat@example.com", role=StaffRole.MANAGER, invited_by=make_user("ops"))
    link = re.search(r"https?://[^/\s]+(/accounts/invite/\S+/)", Notification.objects.get().body).group(1)
    client = Client()
    empty = dict.fromkeys(JoinForm().fields, "")

    blank = client.get("/join/").content.decode()
    errors = client.post("/join/", empty).content.decode()
    fragment = client.post("/join/", empty, headers={"HX-Request": "true"}).content.decode()
    set_password_url = client.get(link).url
    set_password = client.get(set_password_url).content.decode()
    weak = client.post(set_password_url, {"new_password1": "a", "new_password2": "b"}).content.decode()
    done = Client().get("/join/done/").content.decode()
    invalid = Client().get("/accounts/invite/MQ/not-a-token/").content.decode()

    assert fragment.lstrip().startswith('<form id="join-form"')
    emails = [(f"{row.kind} email", row.html_body) for row in Notification.objects.order_by("pk")]
    assert [name for name, _ in emails] == ["store.invitation email"]
    assert_valid_html(
        *emails,
        ("join", blank),
        ("join with errors", errors),
        ("join done", done),
        ("set password", set_password),
        ("set password with errors", weak),
        ("invalid link", invalid),
    )


def _application(mall=None, unit: str = "L2-214"):
    mall = mall or make_mall(name="Fashion Show", market=make_market(name="Las Vegas"))
    hours = {day.value: (dt.time(10), dt.time(21)) for day in Weekday}
    return application_submit(
        marketplace_seller_id="A1B2C3D4E5",
        seller_name="Sunset Retail LLC",
        store_name="Sunset Shoes",
        mall=mall,
        unit=unit,
        contact_name="Pat Lee",
        email="pat@example.com",
        phone="(702) 555-0134",
        hours=hours,
        categories=["footwear"],
        estimated_daily_orders=25,
    )


def test_operator_approves_an_application_in_the_admin(page: Page) -> None:  # noqa: F811
    application = _application()
    make_user("olga", is_staff=True, is_superuser=True)

    log_in(page, "olga", PASSWORD)
    page.goto("/admin/retailers/storeapplication/?status__exact=applied")
    assert_accessible(page)
    page.get_by_role("link", name=application.reference).click()
    expect(page.get_by_text("Friday: 10:00–21:00")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Approve…").click()
    assert_accessible(page)
    page.get_by_label("Note for the applicant (optional)").fill("Welcome")
    page.get_by_role("button", name=f"Approve application {application.reference}").click()

    expect(page.locator(".messagelist")).to_contain_text(
        f"Application {application.reference} approved: Sunset Shoes is onboarding and pat@example.com was invited"
    )
    expect(page.get_by_role("link", name="Approve…")).to_have_count(0)
    assert Store.objects.get().status == StoreStatus.ONBOARDING


def test_application_admin_pages_pass_the_nu_html_checker() -> None:
    application = _application()
    client = Client()
    client.force_login(make_user("olga", is_staff=True, is_superuser=True))
    base = "/admin/retailers/storeapplication/"

    pages = [
        ("list", client.get(base).content.decode()),
        ("change", client.get(f"{base}{application.pk}/change/").content.decode()),
        ("approve", client.get(f"{base}{application.pk}/approve/").content.decode()),
        ("reject with error", client.post(f"{base}{application.pk}/reject/", {"reason": ""}).content.decode()),
    ]
    application_reject(application=application, acting_user=make_user("ops2"), reason="Mall not in the program")
    approved = _application(application.mall, unit="L2-215")
    application_approve(application=approved, acting_user=make_user("ops3"), reason="Welcome")
    emails = [(f"{row.kind} email", row.html_body) for row in Notification.objects.order_by("pk")]
    pages += emails
    assert [name for name, _ in emails] == [
        "application.received email",
        "application.rejected email",
        "application.received email",
        "store.invitation email",
        "application.approved email",
    ]
    # A second application naming the seller the approval created: the page warns and asks.
    claiming = _application(application.mall, unit="L2-216")
    pages += [
        ("approve for an existing seller", client.get(f"{base}{claiming.pk}/approve/").content.decode()),
        ("unconfirmed", client.post(f"{base}{claiming.pk}/approve/", {"reason": ""}).content.decode()),
    ]

    assert "Say why the application is rejected; the applicant reads it." in pages[3][1]
    assert "Check with Sunset Retail LLC first, then tick this" in pages[-1][1]
    assert_valid_html(*pages)
