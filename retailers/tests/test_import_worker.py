"""With a REAL Celery worker process (no eager mode), a queued stock import runs to the
end and its progress and result land in the ImportJob row."""

from pathlib import Path

import pytest

from portal.tests import celery_processes as celery
from portal.tests.factories import make_listing, make_seller, make_store
from retailers.importing import import_job_create
from retailers.models import ImportJob, ImportJobStatus, Stock, StoreEvent
from retailers.tasks import import_job_task


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_import_job_runs_in_real_worker(tmp_path: Path) -> None:
    seller = make_seller()
    store = make_store(seller=seller, unit="L1-100")
    listings = [make_listing(seller=seller, seller_sku=f"SKU-{i}") for i in range(50)]
    lines = ["store,seller_sku,on_hand"] + [f"L1-100,{listing.seller_sku},{i}" for i, listing in enumerate(listings)]
    job = import_job_create(
        seller=seller, kind="stock", dry_run=False, file_name="s.csv", data="\n".join(lines).encode(), acting_user=None
    )
    log = tmp_path / "worker.log"
    env = celery.process_env(tmp_path)
    celery.purge(env)
    worker = celery.start("worker", env=env, log=log)
    try:
        celery.wait_ready(log)
        import_job_task.delay(job.pk)
        celery.wait_for(lambda: ImportJob.objects.get(pk=job.pk).finished, timeout=60, logs=[log], interval=0.5)
    finally:
        celery.stop(worker)

    job.refresh_from_db()
    assert (job.status, job.progress, job.result["created"]) == (ImportJobStatus.SUCCEEDED, 100, 50)
    assert Stock.objects.filter(store=store).count() == 50
    assert StoreEvent.objects.get(type="stock.imported").data == {"created": 50, "updated": 0, "unchanged": 0}
