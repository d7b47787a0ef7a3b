"""The admin import pages in headless Chromium (axe-core at 390 and 1280 px) and the Nu checker."""

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from portal.tests.browser.conftest import assert_accessible, assert_valid_html, browser, log_in, page, width  # noqa: F401
from portal.tests.factories import (
    PASSWORD,
    make_listing,
    make_seller,
    make_seller_manager,
    make_stock,
    make_store,
    make_user,
)
from retailers.importing import import_job_create, import_job_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shop():
    seller = make_seller(name="Sunset Apparel")
    store = make_store(seller=seller, unit="L1-100")
    make_stock(store=store, listing=make_listing(seller=seller, seller_sku="SHIRT"), on_hand=5, reserved=2)
    user = make_user(username="mia", is_staff=True)
    make_seller_manager(seller=seller, user=user)
    return seller, user


def _jobs(seller):
    preview = import_job_create(
        seller=seller,
        kind="stock",
        dry_run=True,
        file_name="s.csv",
        acting_user=None,
        data=b"store,seller_sku,on_hand\nL1-100,SHIRT,8\nL1-100,SHIRT,1\nL9,NOPE,x\n",
    )
    import_job_run(job_id=preview.pk)
    queued = import_job_create(
        seller=seller,
        kind="stock",
        dry_run=False,
        file_name="big.csv",
        acting_user=None,
        data=b"store,seller_sku,on_hand\nL1-100,SHIRT,8\n",
    )
    return preview, queued


def test_import_pages_pass_nu_html_checker() -> None:
    seller, user = _shop()
    preview, queued = _jobs(seller)
    client = Client()
    client.force_login(user)

    upload = client.get("/admin/retailers/importjob/add/").content.decode()
    form_error = client.post("/admin/retailers/importjob/add/", {"kind": "stock"}).content.decode()
    done = client.get(f"/admin/retailers/importjob/{preview.pk}/change/").content.decode()
    polling = client.get(f"/admin/retailers/importjob/{queued.pk}/change/").content.decode()

    assert_valid_html(("upload", upload), ("upload error", form_error), ("preview", done), ("queued", polling))


def test_import_pages_pass_axe_and_preview_shows_row_errors(page: Page) -> None:  # noqa: F811
    seller, _ = _shop()
    preview, queued = _jobs(seller)
    log_in(page, "mia", PASSWORD)

    page.goto("/admin/retailers/importjob/add/")
    assert_accessible(page)
    page.goto(f"/admin/retailers/importjob/{preview.pk}/change/")
    expect(page.locator("#import-status")).to_contain_text("SHIRT at L1-100 already appears in row 2.")
    assert_accessible(page)
    page.goto(f"/admin/retailers/importjob/{queued.pk}/change/")
    expect(page.locator("progress")).to_have_attribute("value", "0")
    import_job_run(job_id=queued.pk)
    expect(page.locator("#import-status")).to_contain_text("Applied: every row above was written.", timeout=5_000)
    assert_accessible(page)


def test_import_job_page_announces_the_finished_job_in_a_live_region_that_stays(page: Page) -> None:  # noqa: F811
    seller, _ = _shop()
    _, queued = _jobs(seller)
    log_in(page, "mia", PASSWORD)
    page.goto(f"/admin/retailers/importjob/{queued.pk}/change/")
    status = page.get_by_role("status").element_handle()

    import_job_run(job_id=queued.pk)

    expect(page.locator("#import-status")).to_contain_text("Applied: every row above was written.", timeout=5_000)
    # The node that was on the page while polling: screen readers announce a change to a live
    # region already there, not the content of a region swapped in.
    assert status.evaluate("node => [node.isConnected, node.getAttribute('aria-live')]") == [True, "polite"]
    assert status.text_content() == (
        "Import of stock from big.csv: Succeeded. Rows 1, create 0, update 1, unchanged 0, rows with errors 0."
    )
