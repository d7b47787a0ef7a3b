"""Import jobs: the Celery task function run directly (the worker path is the same call)."""

import pytest

from portal.tests.factories import make_listing, make_seller, make_stock, make_store, make_user
from retailers.importing import ImportRefused, import_job_create, import_preview, import_row_estimate
from retailers.models import EligibilityRequest, EligibilityRequestKind, ImportJob, ImportJobStatus, Stock, StoreEvent
from retailers.tasks import import_job_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    seller = make_seller()
    store = make_store(seller=seller, unit="L1-100")
    listing = make_listing(seller=seller, seller_sku="SHIRT")
    make_stock(store=store, listing=listing, on_hand=5, reserved=1)
    return seller, store, listing


def test_import_job_task_preview_records_result_and_writes_no_stock(shop):
    seller, store, listing = shop
    job = import_job_create(
        seller=seller,
        kind="stock",
        dry_run=True,
        file_name="s.csv",
        data=b"store,seller_sku,on_hand\nL1-100,SHIRT,8\n",
        acting_user=None,
    )

    import_job_task(job.pk)

    job.refresh_from_db()
    assert (job.status, job.progress, job.message) == (ImportJobStatus.SUCCEEDED, 100, "")
    assert (job.result["updated"], job.result["created"], job.result["error_count"]) == (1, 0, 0)
    assert job.result["applied"] is False
    assert Stock.objects.get(store=store, listing=listing).on_hand == 5


def test_import_job_task_apply_writes_stock_and_event(shop):
    seller, store, listing = shop
    user = make_user(is_staff=True)
    job = import_job_create(
        seller=seller,
        kind="stock",
        dry_run=False,
        file_name="s.csv",
        data=b"store,seller_sku,on_hand\nL1-100,SHIRT,8\n",
        acting_user=user,
    )

    EligibilityRequest.objects.all().delete()

    import_job_task(job.pk)

    job.refresh_from_db()
    assert (job.status, job.result["applied"]) == (ImportJobStatus.SUCCEEDED, True)
    assert job.finished_at is not None
    assert Stock.objects.get(store=store, listing=listing).on_hand == 8
    event = StoreEvent.objects.get(type="stock.imported")
    assert (event.store_id, event.actor, event.data) == (store.pk, user, {"created": 0, "updated": 1, "unchanged": 0})
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [
        (EligibilityRequestKind.LISTING, listing.pk)
    ]


def test_import_job_task_apply_with_row_errors_fails_and_changes_nothing(shop):
    seller, store, listing = shop
    job = import_job_create(
        seller=seller,
        kind="stock",
        dry_run=False,
        file_name="s.csv",
        data=b"store,seller_sku,on_hand\nL1-100,SHIRT,8\nL1-100,SHIRT,0\n",
        acting_user=None,
    )

    import_job_task(job.pk)

    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED
    assert job.message == "Nothing was imported: 1 row has errors. Fix them and upload the file again."
    assert job.result["errors"] == [[3, "SHIRT at L1-100 already appears in row 2."]]
    assert Stock.objects.get(store=store, listing=listing).on_hand == 5
    assert StoreEvent.objects.count() == 0


def test_import_job_task_garbage_file_fails_with_message(shop):
    seller, _, _ = shop
    job = import_job_create(
        seller=seller, kind="stock", dry_run=False, file_name="s.bin", data=b"\x00\x01\x02", acting_user=None
    )

    import_job_task(job.pk)

    job.refresh_from_db()
    assert (job.status, job.message) == (
        ImportJobStatus.FAILED,
        "The file is not a CSV or XLSX file (it looks binary).",
    )


def test_import_job_task_second_delivery_does_nothing(shop):
    seller, store, listing = shop
    job = import_job_create(
        seller=seller,
        kind="stock",
        dry_run=False,
        file_name="s.csv",
        data=b"store,seller_sku,on_hand\nL1-100,SHIRT,8\n",
        acting_user=None,
    )
    import_job_task(job.pk)
    Stock.objects.filter(store=store, listing=listing).update(on_hand=3)

    import_job_task(job.pk)

    assert Stock.objects.get(store=store, listing=listing).on_hand == 3
    assert StoreEvent.objects.filter(type="stock.imported").count() == 1


def test_import_preview_reports_progress_every_5000_rows(shop):
    seller, _, _ = shop
    data = b"store,seller_sku,on_hand\n" + b"L1-100,NOPE,1\n" * 12_000
    calls = []

    report = import_preview(
        seller=seller, kind="stock", name="s.csv", data=data, progress=lambda done, total: calls.append((done, total))
    )

    assert calls == [(5_000, 12_000), (10_000, 12_000)]
    assert (report.error_count, len(report.errors)) == (12_000, 200)
    assert import_row_estimate(data) == 12_000


def test_import_job_create_refuses_unknown_kind(shop):
    seller, _, _ = shop

    with pytest.raises(ImportRefused) as refused:
        import_job_create(seller=seller, kind="orders", dry_run=True, file_name="x.csv", data=b"a", acting_user=None)

    assert refused.value.message == "Unknown import kind 'orders'."
    assert ImportJob.objects.count() == 0
