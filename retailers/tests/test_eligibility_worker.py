"""With a REAL Celery worker and beat (no eager mode), a stock change shows in the eligibility
results within 60 seconds: the change writes its recompute request (the outbox row) and the beat
sweeper, every 2 s, recomputes it."""

import datetime as dt
import time
from pathlib import Path

import pytest

from portal.tests import celery_processes as celery
from portal.tests.factories import make_listing, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityRequest, EligibilityResult
from retailers.stock_services import stock_set_on_hand


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_stock_change_reaches_results_through_real_worker_within_60_seconds(tmp_path: Path) -> None:
    # A cutoff at the very end of the day keeps the store before its cutoff whenever CI runs.
    store = make_store(same_day_cutoff=dt.time(23, 59, 59))
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=1)
    eligibility_recompute()
    before = EligibilityResult.objects.get()
    log = tmp_path / "worker.log"
    beat_log = tmp_path / "beat.log"
    env = celery.process_env(tmp_path)
    celery.purge(env)
    worker = celery.start("worker", env=env, log=log)
    beat = None
    try:
        celery.wait_ready(log)
        beat = celery.start("beat", env=env, log=beat_log)
        started = time.monotonic()
        stock_set_on_hand(store=store, listing=listing, on_hand=0, acting_user=None)
        row = before
        while time.monotonic() - started < 60 and "out_of_stock" not in row.reasons:
            time.sleep(0.3)
            row = EligibilityResult.objects.get()
        elapsed = time.monotonic() - started
        pending = EligibilityRequest.objects.count()
    finally:
        if beat is not None:
            celery.stop(beat)
        celery.stop(worker)

    assert "out_of_stock" not in before.reasons
    assert "out_of_stock" in row.reasons, log.read_text() + beat_log.read_text()
    assert pending == 0
    assert elapsed < 60
    assert row.computed_at > before.computed_at
