"""Two sweepers at once on PostgreSQL: SKIP LOCKED claims split the rows, no row goes out twice."""

import threading

import pytest
from django.core import mail
from django.db import connection, transaction

from portal.notifications import services
from portal.notifications.models import Channel, Notification, NotificationStatus
from portal.notifications.services import Recipient, notify
from portal.notifications.tests.backends import CountingBackend
from portal.tests.factories import make_user

ROWS = 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweepers_never_send_one_row_twice(settings):
    settings.SMS_BACKEND = "portal.notifications.tests.backends.CountingBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    CountingBackend.sent = []
    user = make_user()
    with transaction.atomic():
        for n in range(ROWS // 2):
            notify(
                recipients=[Recipient(user=user, email=f"staff{n}@store.example", phone=f"+1702555{n:04d}")],
                channels=[Channel.EMAIL, Channel.SMS],
                kind="driver.active",
                context={},
                dedupe_key=f"event-{n}",
            )
    start = threading.Barrier(2)
    per_sweeper: list[int] = []

    def sweep() -> None:
        try:
            start.wait()
            sent = 0
            while batch := services.send_due(limit=10):
                sent += batch
            per_sweeper.append(sent)
        finally:
            connection.close()

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in sweepers:
        thread.start()
    for thread in sweepers:
        thread.join(timeout=120)

    keys = [message.extra_headers["Idempotency-Key"] for message in mail.outbox] + CountingBackend.sent
    assert sum(per_sweeper) == ROWS
    assert min(per_sweeper) > 0, f"one sweeper did everything: {per_sweeper}"
    assert len(keys) == ROWS
    assert sorted(keys) == sorted(
        f"mallrun-notification-{pk}" for pk in Notification.objects.values_list("pk", flat=True)
    )
    assert set(Notification.objects.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}
