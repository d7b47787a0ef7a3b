"""The eligibility outbox: hooks write EligibilityRequest rows in the caller's transaction; the beat
sweeper (retailers.eligibility_requests) recomputes and deletes them in one transaction."""

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from django.db import close_old_connections, connection, transaction

from portal.tests import celery_processes as celery
from portal.tests.factories import make_listing, make_mall, make_stock, make_store
from retailers.eligibility_hooks import (
    _enqueue,
    eligibility_after_order_change,
    eligibility_after_stock_change,
    eligibility_after_store_change,
)
from retailers.eligibility_requests import eligibility_requests_run
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityRequest, EligibilityResult
from retailers.models import EligibilityRequestKind as Kind
from retailers.stock_services import stock_set_on_hand
from retailers.tasks import eligibility_requests_sweep
from retailers.tests.postgres_helpers import other_session

REQUESTS = EligibilityRequest._meta.db_table
RESULTS = EligibilityResult._meta.db_table


def _requests() -> list[tuple[int, int]]:
    return sorted(EligibilityRequest.objects.values_list("kind", "object_id"))


def _stocked_listing(*, on_hand: int = 1):
    # A cutoff at the very end of the day keeps the store before its cutoff whenever CI runs.
    store = make_store(same_day_cutoff=dt.time(23, 59, 59))
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=on_hand)
    eligibility_recompute()
    EligibilityRequest.objects.all().delete()
    return store, listing


@pytest.mark.django_db
def test_hooks_write_one_row_per_kind_and_object_and_a_burst_stays_one_row():
    mall = make_mall()

    with transaction.atomic():
        eligibility_after_stock_change(listing_ids=[7, 3, 7])
        eligibility_after_order_change(store_id=99, listing_ids=[3])
        eligibility_after_store_change(store_ids=[5])
        eligibility_after_stock_change(listing_ids=[])
        _enqueue(mall_ids=[mall.pk])

    assert _requests() == [(Kind.LISTING, 3), (Kind.LISTING, 7), (Kind.STORE, 5), (Kind.MALL, mall.pk)]


@pytest.mark.django_db
def test_hook_row_is_written_in_the_callers_transaction_and_a_rollback_leaves_none():
    inside = None
    with pytest.raises(RuntimeError), transaction.atomic():
        eligibility_after_stock_change(listing_ids=[11])
        inside = _requests()
        raise RuntimeError("rolled back")

    assert (inside, _requests()) == ([(Kind.LISTING, 11)], [])


@pytest.mark.django_db
def test_sweeper_recomputes_the_requested_rows_and_deletes_the_requests():
    store, listing = _stocked_listing(on_hand=1)
    before = EligibilityResult.objects.get()

    stock_set_on_hand(store=store, listing=listing, on_hand=0, acting_user=None)
    pending = _requests()
    still = EligibilityResult.objects.get()
    done = eligibility_requests_run()

    assert "out_of_stock" not in before.reasons
    assert pending == [(Kind.LISTING, listing.pk)]
    assert "out_of_stock" not in still.reasons  # nothing recomputed before the sweep
    assert done == 1
    assert "out_of_stock" in EligibilityResult.objects.get().reasons
    assert _requests() == []


@pytest.mark.django_db
def test_sweeper_store_and_mall_requests_recompute_their_scope():
    store, listing = _stocked_listing(on_hand=1)
    other_store, other_listing = _stocked_listing(on_hand=1)
    EligibilityResult.objects.all().delete()

    eligibility_after_store_change(store_ids=[store.pk])
    _enqueue(mall_ids=[other_store.mall_id])
    done = eligibility_requests_run()

    assert done == 2
    assert sorted(EligibilityResult.objects.values_list("listing_id", "mall_id")) == sorted(
        [(listing.pk, store.mall_id), (other_listing.pk, other_store.mall_id)]
    )
    assert _requests() == []


@pytest.mark.django_db
def test_sweeper_takes_listing_requests_and_store_or_mall_requests_in_separate_batches():
    store, listing = _stocked_listing(on_hand=1)
    EligibilityResult.objects.all().delete()
    eligibility_after_stock_change(listing_ids=[listing.pk])
    eligibility_after_store_change(store_ids=[store.pk])
    _enqueue(mall_ids=[store.mall_id])

    done = eligibility_requests_run(limit=2, max_batches=1)

    # One batch of each group: the listing's, then the store's and the mall's.
    assert (done, _requests()) == (3, [])
    assert list(EligibilityResult.objects.values_list("listing_id", "mall_id")) == [(listing.pk, store.mall_id)]


@pytest.mark.django_db
def test_sweeper_caps_each_batch_and_leaves_the_rest_for_the_next_sweep():
    store = make_store()
    listings = [make_listing(seller=store.seller) for _ in range(5)]
    EligibilityRequest.objects.all().delete()
    eligibility_after_stock_change(listing_ids=[listing.pk for listing in listings])

    first = eligibility_requests_run(limit=2, max_batches=2)
    left = len(_requests())
    second = eligibility_requests_run(limit=2, max_batches=2)

    assert (first, left, second, _requests()) == (4, 1, 1, [])
    assert EligibilityResult.objects.count() == 5


@pytest.mark.django_db
def test_sweeper_task_with_nothing_pending_writes_nothing():
    make_listing(seller=make_store().seller)
    EligibilityRequest.objects.all().delete()

    eligibility_requests_sweep()

    assert EligibilityResult.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_hook_row_is_invisible_to_others_until_the_caller_commits_on_postgres():
    other = other_session()
    try:
        with transaction.atomic():
            eligibility_after_stock_change(listing_ids=[21])
            seen_before = other.execute(f"SELECT count(*) FROM {REQUESTS}").fetchone()[0]  # noqa: S608
        other.rollback()
        seen_after = other.execute(f"SELECT count(*) FROM {REQUESTS}").fetchone()[0]  # noqa: S608
    finally:
        other.close()

    assert (seen_before, seen_after) == (0, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_never_process_one_row_twice_on_postgres():
    store = make_store()
    listings = [make_listing(seller=store.seller) for _ in range(120)]
    EligibilityRequest.objects.all().delete()
    eligibility_after_stock_change(listing_ids=[listing.pk for listing in listings])
    barrier = threading.Barrier(2)
    processed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sweep():
        try:
            barrier.wait()
            done = eligibility_requests_run(limit=10)
            with lock:
                processed.append(done)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(processed) == 120
    assert _requests() == []
    assert EligibilityResult.objects.count() == 120


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sweep_skips_a_request_whose_writer_has_not_committed_and_takes_it_after_on_postgres():
    # The request row exists from an earlier change; a second change merges into it and is still
    # open. A sweep now would read the old stock: it must leave the row for the next sweep.
    store, listing = _stocked_listing(on_hand=1)
    eligibility_after_stock_change(listing_ids=[listing.pk])
    merged = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            with transaction.atomic():
                stock_set_on_hand(store=store, listing=listing, on_hand=0, acting_user=None)
                merged.set()
                release.wait(timeout=60)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert merged.wait(timeout=60)
        during = eligibility_requests_run()
    finally:
        release.set()
        thread.join(timeout=60)
    after = eligibility_requests_run()

    assert errors == []
    assert (during, after) == (0, 1)
    assert "out_of_stock" in EligibilityResult.objects.get().reasons
    assert _requests() == []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_sweep_leaves_the_requests_for_the_next_sweep(tmp_path: Path) -> None:
    store, listing = _stocked_listing(on_hand=1)
    stock_set_on_hand(store=store, listing=listing, on_hand=0, acting_user=None)
    env = celery.process_env(tmp_path)
    celery.purge(env)
    logs = [tmp_path / "worker.log", tmp_path / "beat.log", tmp_path / "worker2.log"]
    blocker = other_session()
    watcher = other_session()
    watcher.autocommit = True
    worker = beat = second = None
    try:
        # Holds the results table: the sweep deletes its claim, then waits inside its transaction.
        blocker.execute(f"LOCK TABLE {RESULTS} IN ACCESS EXCLUSIVE MODE")
        worker = celery.start("worker", env=env, log=logs[0])
        beat = celery.start("beat", env=env, log=logs[1])

        def sweep_holds_the_claim() -> bool:
            total = watcher.execute(f"SELECT count(*) FROM {REQUESTS}").fetchone()[0]  # noqa: S608
            free = watcher.execute(f"SELECT count(*) FROM (SELECT 1 FROM {REQUESTS} FOR UPDATE SKIP LOCKED) q")  # noqa: S608
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", [RESULTS]
            ).fetchone()[0]
            return total == 1 and free.fetchone()[0] == 0 and waiting >= 1

        celery.wait_for(sweep_holds_the_claim, timeout=180, logs=logs, interval=0.2)
        worker.kill()
        worker.wait(timeout=30)
        blocker.rollback()

        def orphan_gone() -> bool:
            return (
                watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND pid <> pg_backend_pid()",
                    [REQUESTS],
                ).fetchone()[0]
                == 0
            )

        celery.wait_for(orphan_gone, timeout=120, logs=logs, interval=0.2)
        left = _requests()
        untouched = EligibilityResult.objects.get()

        second = celery.start("worker", env=env, log=logs[2])
        celery.wait_ready(logs[2])
        started = time.monotonic()
        celery.wait_for(
            lambda: "out_of_stock" in EligibilityResult.objects.get().reasons, timeout=60, logs=logs, interval=0.3
        )
        elapsed = time.monotonic() - started
        remaining = _requests()
    finally:
        blocker.close()
        watcher.close()
        for process in (worker, beat, second):
            if process is not None:
                celery.stop(process)

    assert left == [(Kind.LISTING, listing.pk)]
    assert "out_of_stock" not in untouched.reasons
    assert elapsed < 60
    assert remaining == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_clock_sweep_waits_for_a_running_recompute_of_a_new_store_on_postgres():
    # Both would insert the new store's EligibilityStoreState row: without one recompute at a
    # time, the second fails on its primary key once the first commits.
    from django.utils import timezone

    from retailers.eligibility_sql import eligibility_sweep_run
    from retailers.models import EligibilityStoreState

    store, listing = _stocked_listing(on_hand=3)
    EligibilityStoreState.objects.filter(store=store).delete()
    first_done, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first_recompute():
        try:
            with transaction.atomic():
                eligibility_recompute(store_ids=[store.pk])
                first_done.set()
                release.wait(timeout=30)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    def clock_sweep():
        try:
            eligibility_sweep_run(now=timezone.now())
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    first = threading.Thread(target=first_recompute)
    first.start()
    assert first_done.wait(timeout=30)
    second = threading.Thread(target=clock_sweep)
    second.start()
    second.join(timeout=1)
    waiting = second.is_alive()
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert (waiting, errors) == (True, [])
    assert EligibilityStoreState.objects.filter(store=store).count() == 1
    assert EligibilityResult.objects.filter(listing=listing).count() == 1
