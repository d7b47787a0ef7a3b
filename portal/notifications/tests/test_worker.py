"""The sweeper in a REAL Celery worker and beat on Redis (no eager mode), against the test
database: a worker killed with SIGKILL after the SMS provider accepted a message, before the row
was marked sent, loses nothing and sends nothing twice."""

import collections
import os
import signal
from pathlib import Path

import pytest
from django.db import transaction

from portal.notifications.models import Channel, Notification, NotificationStatus
from portal.notifications.services import Recipient, notify
from portal.notifications.tests.backends import HANG_TO
from portal.tests import celery_processes as celery
from portal.tests.factories import make_user

MESSAGES = 40


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
    env = celery.process_env(
        tmp_path,
        SMS_BACKEND="portal.notifications.tests.backends.HangAfterAcceptBackend",
        NOTIFICATIONS_CLAIM_SECONDS="3",
    )
    celery.purge(env)
    logs = [tmp_path / "worker.log", tmp_path / "beat.log"]
    beat, worker = celery.start("beat", env=env, log=logs[1]), celery.start("worker", env=env, log=logs[0])
    try:
        # The provider accepted the message to HANG_TO and the worker hangs before marking it sent.
        celery.wait_for(lambda: hung.idempotency_key in _keys(sms_log), timeout=60, logs=logs)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        hung.refresh_from_db()
        assert hung.status == NotificationStatus.PENDING
        worker = celery.start("worker", env=env, log=logs[0])
        celery.wait_for(
            lambda: not Notification.objects.filter(status=NotificationStatus.PENDING).exists(), timeout=60, logs=logs
        )
    finally:
        celery.stop(beat)
        celery.stop(worker)

    per_key = collections.Counter(_keys(sms_log))
    rows = Notification.objects.all()
    assert {row.idempotency_key for row in rows} == set(per_key)
    assert set(per_key.values()) == {1}
    assert len(per_key) == MESSAGES
    assert set(rows.values_list("status", flat=True)) == {NotificationStatus.SENT}
    hung.refresh_from_db()
    assert hung.attempts == 2
