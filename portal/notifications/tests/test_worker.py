"""The sweeper in a REAL Celery worker and beat on Redis (no eager mode), against the test
database: a worker killed with SIGKILL after the SMS provider accepted a message, before the row
was marked sent, loses nothing and sends nothing twice."""

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from portal.notifications.models import Channel, Notification, NotificationStatus
from portal.notifications.services import Recipient, notify
from portal.notifications.tests.backends import HANG_TO
from portal.tests.factories import make_user

BASE_DIR = Path(settings.BASE_DIR)
MESSAGES = 40


def _env(tmp_path: Path) -> dict[str, str]:
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL,
        "MALLRUN_VAR_DIR": str(tmp_path),
        "SMS_BACKEND": "portal.notifications.tests.backends.HangAfterAcceptBackend",
        "NOTIFICATIONS_CLAIM_SECONDS": "3",
    }


def _start(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "portal", kind, "--loglevel", "INFO"]
    if kind == "worker":
        command += ["--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    else:
        command += ["--schedule", str(log.with_suffix(".db"))]
    with log.open("a") as out:
        return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(condition, *, timeout: float, logs: list[Path]) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {timeout}s; logs:\n" + "\n".join(log.read_text()[-3000:] for log in logs))


def _keys(sms_log: Path) -> list[str]:
    return [line.split("\t")[1] for line in sms_log.read_text().splitlines()] if sms_log.exists() else []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    user = make_user()
    with transaction.atomic():
        for n in range(MESSAGES):
            notify(
                recipients=[Recipient(user=user, phone=f"+1555000{n:04d}")],
                channels=[Channel.SMS],
                kind="driver.active",
                context={},
                dedupe_key=f"event-{n}",
            )
    hung = Notification.objects.get(to=HANG_TO)
    sms_log = tmp_path / "sms.log"
    env = _env(tmp_path)
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "portal", "purge", "-f"], cwd=BASE_DIR, env=env, capture_output=True
    )
    logs = [tmp_path / "worker.log", tmp_path / "beat.log"]
    beat, worker = _start("beat", env, logs[1]), _start("worker", env, logs[0])
    try:
        # The provider accepted the message to HANG_TO and the worker hangs before marking it sent.
        _wait(lambda: hung.idempotency_key in _keys(sms_log), timeout=60, logs=logs)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        hung.refresh_from_db()
        assert hung.status == NotificationStatus.PENDING
        worker = _start("worker", env, logs[0])
        _wait(
            lambda: not Notification.objects.filter(status=NotificationStatus.PENDING).exists(), timeout=60, logs=logs
        )
    finally:
        _stop(beat)
        _stop(worker)

    per_key = collections.Counter(_keys(sms_log))
    rows = Notification.objects.all()
    assert {row.idempotency_key for row in rows} == set(per_key)
    assert set(per_key.values()) == {1}
    assert len(per_key) == MESSAGES
    assert set(rows.values_list("status", flat=True)) == {NotificationStatus.SENT}
    hung.refresh_from_db()
    assert hung.attempts == 2
