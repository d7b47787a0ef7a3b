"""The store settings page with the keyboard, as a person on a phone or desktop does it: after an
htmx save the focus lands on what changed (the message, or the first field to correct), not on
the top of the document, so a screen reader reads it and Tab continues from there."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import Page, expect

from portal.tests.browser import conftest as harness
from portal.tests.browser.conftest import log_in
from portal.tests.factories import PASSWORD, make_staff, make_store, make_user
from retailers.models import StaffRole
from retailers.team import end_sessions_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
browser, width, page = harness.browser, harness.width, harness.page


@pytest.fixture
def manager_page(page: Page) -> Page:
    store = make_store(name="Sole Mates")
    make_staff(store=store, role=StaffRole.MANAGER, user=make_user("pat", first_name="Pat", last_name="Lee"))
    log_in(page, "pat", PASSWORD)
    page.goto(reverse("store:store-settings"))
    return page


def test_store_settings_saved_with_the_keyboard_focuses_the_message(manager_page: Page) -> None:
    manager_page.get_by_label("Prep time (minutes from order to ready)").fill("45")

    manager_page.get_by_role("button", name="Save settings").press("Enter")

    expect(manager_page.get_by_text("Settings saved.")).to_be_visible()
    expect(manager_page.locator("#store-settings .messages")).to_be_focused()


def test_store_settings_error_from_the_keyboard_focuses_the_first_field_to_correct(manager_page: Page) -> None:
    manager_page.get_by_label("Prep time (minutes from order to ready)").fill("1")

    manager_page.get_by_role("button", name="Save settings").press("Enter")

    expect(manager_page.get_by_text("Nothing was saved: correct the fields marked below.")).to_be_visible()
    expect(manager_page.get_by_label("Prep time (minutes from order to ready)")).to_be_focused()


def test_store_pause_without_a_reason_from_the_keyboard_focuses_the_reason(manager_page: Page) -> None:
    manager_page.get_by_role("button", name="Pause same-day").press("Enter")

    expect(manager_page.get_by_text("Say why same-day is paused")).to_be_visible()
    expect(manager_page.get_by_label("Why pause same-day?")).to_be_focused()


def test_store_settings_save_after_the_session_ended_goes_to_the_log_in_page(manager_page: Page) -> None:
    # Deactivation (or an operator) ended the session while the page was open: the answer to the
    # htmx save is the log-in redirect, which must take the whole tab there, not be swapped into
    # the settings panel.
    end_sessions_of(get_user_model().objects.get(username="pat"))

    manager_page.get_by_role("button", name="Save settings").click()

    expect(manager_page).to_have_url(re.compile(r"/accounts/login/\?next=/store/settings/$"))
    expect(manager_page.get_by_role("heading", level=1)).to_have_text("Log in to Mallrun")
