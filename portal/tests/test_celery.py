"""The heartbeat task runs in a REAL worker process (no eager mode), against the test database."""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Connection

from portal.models import WorkerHeartbeat
from portal.tasks import record_heartbeat
from portal.tests import celery_processes as celery
from portal.tests.factories import make_user


def _wait_for_heartbeat(name: str, worker: subprocess.Popen, log: Path, timeout: float = 60) -> WorkerHeartbeat:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = WorkerHeartbeat.objects.filter(name=name).first()
        if beat is not None:
            return beat
        if worker.poll() is not None:
            break
        time.sleep(0.3)
    pytest.fail(f"the worker did not run the task within {timeout}s; its log:\n{log.read_text()}")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_record_heartbeat_runs_in_real_worker_over_redis(tmp_path: Path) -> None:
    queue = f"test-{uuid.uuid4().hex}"
    env = celery.process_env()
    worker = celery.start("worker", env=env, log=tmp_path / "worker.log", queue=queue)
    try:
        celery.wait_ready(tmp_path / "worker.log")
        record_heartbeat.apply_async(kwargs={"name": "redis-test"}, queue=queue)

        beat = _wait_for_heartbeat("redis-test", worker, tmp_path / "worker.log")
    finally:
        celery.stop(worker)

    assert beat.beats == 1
    assert beat.worker.startswith("celery@")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_record_heartbeat_runs_in_real_worker_over_filesystem_broker(tmp_path: Path) -> None:
    queue = f"test-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"DATABASE_URL": celery.test_database_url(), "MALLRUN_VAR_DIR": str(tmp_path / "var")}
    folder = tmp_path / "var" / "broker" / "queue"
    folder.mkdir(parents=True)
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder.parent / "control"),
        "store_processed": False,
    }
    worker = celery.start("worker", env=env, log=tmp_path / "worker.log", queue=queue)
    try:
        celery.wait_ready(tmp_path / "worker.log")
        with Connection("filesystem://", transport_options=options) as broker:
            record_heartbeat.apply_async(kwargs={"name": "filesystem-test"}, queue=queue, connection=broker)
            record_heartbeat.apply_async(kwargs={"name": "filesystem-test"}, queue=queue, connection=broker)

        _wait_for_heartbeat("filesystem-test", worker, tmp_path / "worker.log")
        deadline = time.monotonic() + 30
        while WorkerHeartbeat.objects.get(name="filesystem-test").beats < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        celery.stop(worker)

    beat = WorkerHeartbeat.objects.get(name="filesystem-test")
    assert beat.beats == 2
    assert beat.worker.startswith("celery@")


def test_beat_schedule_runs_heartbeat_every_30_seconds() -> None:
    assert settings.CELERY_BEAT_SCHEDULE["heartbeat"] == {"task": "portal.record_heartbeat", "schedule": 30}


@pytest.mark.django_db
def test_heartbeat_admin_shows_last_run_to_operator_only(client) -> None:
    WorkerHeartbeat.objects.create(name="beat", worker="celery@tablet-7", last_seen_at=timezone.now(), beats=42)
    client.force_login(make_user("ops", is_staff=True, is_superuser=True))
    operator_page = client.get("/admin/portal/workerheartbeat/")
    client.force_login(make_user("staffer", is_staff=True))
    staff_page = client.get("/admin/portal/workerheartbeat/")

    assert operator_page.status_code == 200
    assert "celery@tablet-7" in operator_page.content.decode()
    assert staff_page.status_code == 403
