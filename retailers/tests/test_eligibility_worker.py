"""With a REAL Celery worker process (no eager mode), a stock change shows in the eligibility
results within 60 seconds."""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from portal.tests.factories import make_listing, make_stock, make_store
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityResult
from retailers.stock_services import stock_set_on_hand

BASE_DIR = Path(settings.BASE_DIR)


def _test_database_url() -> str:
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"


def _start_worker(*, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "REDIS_URL": settings.REDIS_URL}
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "--loglevel", "INFO"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def _stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


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
    worker = _start_worker(log=log)
    try:
        started = time.monotonic()
        stock_set_on_hand(store=store, listing=listing, on_hand=0, acting_user=None)
        row = before
        while time.monotonic() - started < 60 and "out_of_stock" not in row.reasons:
            time.sleep(0.3)
            row = EligibilityResult.objects.get()
        elapsed = time.monotonic() - started
    finally:
        _stop(worker)

    assert "out_of_stock" not in before.reasons
    assert "out_of_stock" in row.reasons, log.read_text()
    assert elapsed < 60
    assert row.computed_at > before.computed_at
