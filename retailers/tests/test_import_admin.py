"""The admin import pages: upload, preview, apply, polling; scoped to the manager's seller."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.tests.factories import make_listing, make_seller, make_seller_manager, make_stock, make_store, make_user
from retailers.models import ImportJob, ImportJobStatus, Stock

pytestmark = pytest.mark.django_db
ADD = "admin:retailers_importjob_add"
STOCK_FILE = b"store,seller_sku,on_hand\nL1-100,SHIRT,8\n"


@pytest.fixture
def shop():
    seller = make_seller()
    store = make_store(seller=seller, unit="L1-100")
    listing = make_listing(seller=seller, seller_sku="SHIRT")
    stock = make_stock(store=store, listing=listing, on_hand=5)
    manager = make_seller_manager(seller=seller).user
    return {"seller": seller, "store": store, "stock": stock, "manager": manager}


def upload(client, seller, data=STOCK_FILE, action="preview", name="s.csv"):
    return client.post(
        reverse(ADD),
        {"seller": seller.pk, "kind": "stock", "action": action, "file": SimpleUploadedFile(name, data)},
    )


def job_url(job):
    return reverse("admin:retailers_importjob_change", args=[job.pk])


def test_import_upload_page_manager_gets_it(client, shop):
    client.force_login(shop["manager"])

    response = client.get(reverse(ADD))

    assert response.status_code == 200
    assert b"store, seller_sku, on_hand" in response.content
    assert list(response.context["form"].fields["seller"].queryset) == [shop["seller"]]


def test_import_upload_page_staff_without_seller_gets_403(client, shop):
    client.force_login(make_user(is_staff=True))

    assert client.get(reverse(ADD)).status_code == 403
    assert upload(client, shop["seller"]).status_code == 403
    assert ImportJob.objects.count() == 0


def test_import_upload_wrong_method_gets_405(client, shop):
    client.force_login(shop["manager"])

    assert client.put(reverse(ADD)).status_code == 405


def test_import_upload_preview_runs_inline_and_writes_no_stock(client, shop):
    client.force_login(shop["manager"])

    response = upload(client, shop["seller"])

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == job_url(job)
    assert (job.status, job.dry_run, job.result["updated"]) == (ImportJobStatus.SUCCEEDED, True, 1)
    assert Stock.objects.get(pk=shop["stock"].pk).on_hand == 5
    page = client.get(job_url(job))
    assert b"Apply this file" in page.content
    assert b'<progress id="import-progress" max="100" value="100">' in page.content


def test_import_apply_after_preview_writes_stock(client, shop):
    client.force_login(shop["manager"])
    upload(client, shop["seller"])
    preview = ImportJob.objects.get()

    response = client.post(reverse("admin:retailers_importjob_apply", args=[preview.pk]))

    applied = ImportJob.objects.exclude(pk=preview.pk).get()
    assert response["Location"] == job_url(applied)
    assert (applied.status, applied.dry_run, applied.result["applied"]) == (ImportJobStatus.SUCCEEDED, False, True)
    assert Stock.objects.get(pk=shop["stock"].pk).on_hand == 8


def test_import_apply_view_get_gets_405(client, shop):
    client.force_login(shop["manager"])
    upload(client, shop["seller"])

    assert client.get(reverse("admin:retailers_importjob_apply", args=[ImportJob.objects.get().pk])).status_code == 405


def test_import_upload_manager_cannot_choose_another_seller(client, shop):
    other = make_seller()
    make_store(seller=other, unit="L1-100")
    client.force_login(shop["manager"])

    response = upload(client, other)

    assert response.status_code == 200
    assert "seller" in response.context["form"].errors
    assert ImportJob.objects.count() == 0


def test_import_upload_other_sellers_store_is_a_row_error(client, shop):
    stranger = make_store(unit="L9-900")
    client.force_login(shop["manager"])

    upload(client, shop["seller"], data=f"store,seller_sku,on_hand\n{stranger.pk},SHIRT,8\n".encode(), action="apply")

    job = ImportJob.objects.get()
    assert job.status == ImportJobStatus.FAILED
    assert job.result["errors"] == [[2, f'unknown store "{stranger.pk}" (use the unit or id of one of your stores).']]
    assert not Stock.objects.filter(store=stranger).exists()


def test_import_job_page_other_sellers_manager_gets_404(client, shop):
    client.force_login(shop["manager"])
    upload(client, shop["seller"])
    job = ImportJob.objects.get()
    client.force_login(make_seller_manager(seller=make_seller()).user)

    assert client.get(job_url(job)).status_code == 404
    assert client.post(reverse("admin:retailers_importjob_apply", args=[job.pk])).status_code == 404
    assert Stock.objects.get(pk=shop["stock"].pk).on_hand == 5


def test_import_upload_operator_chooses_seller(client, shop):
    client.force_login(make_user(is_staff=True, is_superuser=True))

    upload(client, shop["seller"], action="apply")

    assert Stock.objects.get(pk=shop["stock"].pk).on_hand == 8


def test_import_upload_large_file_queues_task_and_page_polls(client, shop, django_capture_on_commit_callbacks):
    client.force_login(shop["manager"])
    data = b"store,seller_sku,on_hand\n" + b"L1-100,SHIRT,8\n" * 2_500

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        upload(client, shop["seller"], data=data)

    job = ImportJob.objects.get()
    assert (job.status, len(callbacks)) == (ImportJobStatus.QUEUED, 1)
    fragment = client.get(job_url(job), headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<section id="import-status"')
    assert b'data-hx-trigger="every 1s"' in fragment.content
    assert b"<html" not in fragment.content


def test_import_upload_binary_file_shows_message_and_changes_nothing(client, shop):
    client.force_login(shop["manager"])

    upload(client, shop["seller"], data=b"\x00\x01binary", action="apply")

    job = ImportJob.objects.get()
    assert (job.status, job.message) == (
        ImportJobStatus.FAILED,
        "The file is not a CSV or XLSX file (it looks binary).",
    )
    page = client.get(job_url(job))
    assert b"The file is not a CSV or XLSX file (it looks binary)." in page.content
    assert b"Apply this file" not in page.content
    assert Stock.objects.get(pk=shop["stock"].pk).on_hand == 5


def test_import_upload_empty_file_is_a_form_error(client, shop):
    client.force_login(shop["manager"])

    response = upload(client, shop["seller"], data=b"", action="apply")

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == ["The submitted file is empty."]
    assert ImportJob.objects.count() == 0


def test_import_job_page_staff_without_seller_gets_403(client, shop):
    client.force_login(shop["manager"])
    upload(client, shop["seller"])
    client.force_login(make_user(is_staff=True))

    assert client.get(job_url(ImportJob.objects.get())).status_code == 403


def test_import_job_list_shows_only_the_managers_seller(client, shop):
    client.force_login(shop["manager"])
    upload(client, shop["seller"])
    mine = ImportJob.objects.get()
    other = make_seller()
    make_store(seller=other, unit="L1-100")
    client.force_login(make_user(is_staff=True, is_superuser=True))
    upload(client, other)
    client.force_login(shop["manager"])

    response = client.get(reverse("admin:retailers_importjob_changelist"))

    assert response.status_code == 200
    assert [job.pk for job in response.context["cl"].result_list] == [mine.pk]


def test_import_job_poll_of_a_failed_job_tells_the_pages_live_region_why(client, shop):
    client.force_login(shop["manager"])
    upload(client, shop["seller"], data=b"store,seller_sku,on_hand\nL1-100,SHIRT,-1\n", action="apply", name="bad.csv")
    job = ImportJob.objects.get()

    fragment = client.get(job_url(job), headers={"HX-Request": "true"}).content.decode()

    assert fragment.rstrip().endswith(
        '<p id="import-announce" data-hx-swap-oob="innerHTML">Import of stock from bad.csv: Failed. Nothing was '
        "imported: 1 row has errors. Fix them and upload the file again. Rows 1, create 0, update 0, unchanged 0, "
        "rows with errors 1.</p>"
    )
    assert Stock.objects.get(pk=shop["stock"].pk).on_hand == 5
