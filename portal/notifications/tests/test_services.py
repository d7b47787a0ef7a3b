"""The outbox: written with the change, sent once by the sweeper, retried with backoff, dead at
the end, and a claim whose worker died comes due again without a second message."""

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.admin.sites import AdminSite
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core import mail
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from portal.notifications import services
from portal.notifications.admin import NotificationAdmin
from portal.notifications.models import Channel, Notification, NotificationStatus
from portal.notifications.services import Recipient, notify
from portal.notifications.sms import FileBackend, SmsMessage
from portal.tests.factories import make_user

BOTH = [Channel.EMAIL, Channel.SMS]


@pytest.fixture
def sms_file(settings, tmp_path: Path) -> Path:
    settings.SMS_BACKEND = "portal.notifications.sms.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.log")
    return tmp_path / "sms.log"


def _lines(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []


def _dana() -> Recipient:
    user = make_user(first_name="Dana", email="dana@example.com")
    return Recipient(user=user, email=user.email, phone="+17025550100")


@pytest.mark.django_db
def test_notify_writes_one_row_per_channel_and_same_event_twice_writes_nothing_new():
    dana = _dana()
    context = {"mall": "Fashion Show"}

    first = notify(recipients=[dana], channels=BOTH, kind="route.cancelled", context=context, dedupe_key="route-1")
    again = notify(recipients=[dana], channels=BOTH, kind="route.cancelled", context=context, dedupe_key="route-1")

    assert [row.pk for row in again] == [row.pk for row in first]
    rows = Notification.objects.order_by("channel")
    assert [(row.channel, row.to, row.status, row.attempts) for row in rows] == [
        (Channel.EMAIL, "dana@example.com", NotificationStatus.PENDING, 0),
        (Channel.SMS, "+17025550100", NotificationStatus.PENDING, 0),
    ]
    assert rows[0].body == "Every order on your route at Fashion Show was cancelled: you need not go."


@pytest.mark.django_db
def test_notify_skips_channels_without_an_address():
    user = make_user(email="")

    rows = notify(recipients=[Recipient(user=user)], channels=BOTH, kind="driver.active", context={}, dedupe_key="a")

    assert rows == []
    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_notify_refuses_to_write_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        notify(recipients=[_dana()], channels=BOTH, kind="driver.active", context={}, dedupe_key="a")

    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_writes_and_sends_nothing(sms_file, mailoutbox):
    dana = _dana()

    with pytest.raises(ValueError), transaction.atomic():
        dana.user.first_name = "Dani"
        dana.user.save()
        notify(recipients=[dana], channels=BOTH, kind="driver.active", context={}, dedupe_key="active-1")
        raise ValueError("the change failed after notify")

    assert services.send_due() == 0
    assert (Notification.objects.count(), len(mailoutbox), sms_file.exists()) == (0, 0, False)


@pytest.mark.django_db(transaction=True)
def test_send_due_sends_each_row_once_by_locmem_email_and_file_sms(sms_file, mailoutbox):
    with transaction.atomic():
        rows = notify(recipients=[_dana()], channels=BOTH, kind="driver.active", context={}, dedupe_key="active-1")
    email_row, sms_row = sorted(rows, key=lambda row: row.channel)

    sent = services.send_due()
    again = services.send_due()

    assert (sent, again) == (2, 0)
    [message] = mailoutbox
    assert (message.to, message.subject) == (["dana@example.com"], "You can take deliveries")
    assert message.extra_headers["Idempotency-Key"] == f"mallrun-notification-{email_row.pk}"
    assert message.extra_headers["Message-ID"] == f"<mallrun-notification-{email_row.pk}@mallrun>"
    assert [line[1:] for line in _lines(sms_file)] == [
        [
            f"mallrun-notification-{sms_row.pk}",
            "+17025550100",
            "Your Mallrun driver account is active: go online to receive offers.",
        ]
    ]
    statuses = set(Notification.objects.values_list("status", "attempts", "last_error"))
    assert statuses == {(NotificationStatus.SENT, 1, "")}
    assert Notification.objects.filter(sent_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_send_due_leaves_rows_not_yet_due(sms_file):
    now = timezone.now()
    with transaction.atomic():
        [row] = notify(recipients=[_dana()], channels=[Channel.SMS], kind="driver.active", context={}, dedupe_key="a")
    Notification.objects.filter(pk=row.pk).update(due_at=now + dt.timedelta(seconds=10))

    assert services.send_due(now=now) == 0
    assert services.send_due(now=now + dt.timedelta(seconds=10)) == 1


@pytest.mark.django_db(transaction=True)
def test_failing_backend_is_retried_with_backoff_and_dead_after_last_attempt(settings, sms_file):
    settings.SMS_BACKEND = "portal.notifications.tests.backends.DownBackend"
    with transaction.atomic():
        [row] = notify(recipients=[_dana()], channels=[Channel.SMS], kind="driver.active", context={}, dedupe_key="a")
    now = timezone.now()
    waits = []

    for _attempt in range(services.MAX_ATTEMPTS):
        assert services.send_due(now=now) == 0
        row.refresh_from_db()
        if row.status == NotificationStatus.PENDING:
            waits.append((row.due_at - now).total_seconds())
            assert services.send_due(now=row.due_at - dt.timedelta(seconds=1)) == 0
            now = row.due_at

    assert waits == [30, 60, 120, 240, 480]
    assert (row.status, row.attempts, row.last_error) == (
        NotificationStatus.DEAD,
        services.MAX_ATTEMPTS,
        "ConnectionError: provider down",
    )
    assert services.send_due(now=now + dt.timedelta(days=1)) == 0


@pytest.mark.django_db(transaction=True)
def test_operator_sends_dead_message_again_from_admin(settings, sms_file):
    with transaction.atomic():
        [row] = notify(recipients=[_dana()], channels=[Channel.SMS], kind="driver.active", context={}, dedupe_key="a")
    Notification.objects.filter(pk=row.pk).update(status=NotificationStatus.DEAD, attempts=6, last_error="x")
    request = RequestFactory().post("/admin/notifications/notification/")
    request.user = make_user(is_staff=True, is_superuser=True)
    request.session = {}
    request._messages = FallbackStorage(request)

    NotificationAdmin(Notification, AdminSite()).send_again(request, Notification.objects.all())
    sent = services.send_due()

    row.refresh_from_db()
    assert (sent, row.status, row.attempts) == (1, NotificationStatus.SENT, 1)
    assert len(_lines(sms_file)) == 1


@pytest.mark.django_db(transaction=True)
def test_claim_of_a_dead_worker_comes_due_again_and_sends_one_message(sms_file):
    with transaction.atomic():
        [row] = notify(recipients=[_dana()], channels=[Channel.SMS], kind="driver.active", context={}, dedupe_key="a")
    now = timezone.now()
    # A worker claimed the row, the provider accepted the SMS, and the worker died before marking it.
    [claimed] = services._claim(now=now, limit=10)
    FileBackend().send(SmsMessage(to=claimed.to, body=claimed.body, idempotency_key=claimed.idempotency_key))

    during_claim = services.send_due(now=now + dt.timedelta(seconds=119))
    after_claim = services.send_due(now=now + dt.timedelta(seconds=120))

    row.refresh_from_db()
    assert (during_claim, after_claim, row.status, row.attempts) == (0, 1, NotificationStatus.SENT, 2)
    assert [line[1] for line in _lines(sms_file)] == [f"mallrun-notification-{row.pk}"]


@pytest.mark.django_db(transaction=True)
def test_claim_after_last_attempt_died_marks_row_dead(sms_file):
    with transaction.atomic():
        [row] = notify(recipients=[_dana()], channels=[Channel.SMS], kind="driver.active", context={}, dedupe_key="a")
    now = timezone.now()
    Notification.objects.filter(pk=row.pk).update(attempts=services.MAX_ATTEMPTS)

    assert services.send_due(now=now) == 0

    row.refresh_from_db()
    assert (row.status, row.last_error) == (NotificationStatus.DEAD, "the worker stopped during the last attempt")
    assert _lines(sms_file) == []
    assert mail.outbox == []


def test_backoff_doubles_from_30_seconds_up_to_an_hour():
    assert [services.backoff(n).total_seconds() for n in (1, 2, 3, 7, 20)] == [30, 60, 120, 1920, 3600]


RESET_LINK = "https://mallrun.example/accounts/reset/MQ/set-password-token/"


def _password_reset(dana: Recipient) -> Notification:
    context = {"full_name": "Dana", "username": "dana", "link": RESET_LINK, "valid_hours": 24}
    with transaction.atomic():
        [row] = notify(
            recipients=[dana], channels=[Channel.EMAIL], kind="account.password_reset", context=context, dedupe_key="r"
        )
    return row


@pytest.mark.django_db(transaction=True)
def test_sent_set_password_link_leaves_the_database_and_other_messages_keep_their_text(sms_file, mailoutbox):
    dana = _dana()
    reset = _password_reset(dana)
    with transaction.atomic():
        [offer] = notify(recipients=[dana], channels=[Channel.SMS], kind="driver.active", context={}, dedupe_key="a")
    assert RESET_LINK in reset.body and RESET_LINK in reset.html_body

    assert services.send_due() == 2

    [message] = mailoutbox
    assert RESET_LINK in message.body
    assert RESET_LINK in message.alternatives[0][0]
    reset.refresh_from_db()
    offer.refresh_from_db()
    assert (reset.status, reset.body, reset.html_body) == (NotificationStatus.SENT, services.REDACTED, "")
    assert (offer.status, offer.body) == (
        NotificationStatus.SENT,
        "Your Mallrun driver account is active: go online to receive offers.",
    )


@pytest.mark.django_db(transaction=True)
def test_set_password_link_kept_while_sending_fails_so_a_retry_still_carries_it(settings, mailoutbox):
    settings.EMAIL_BACKEND = "portal.notifications.tests.backends.DownEmailBackend"
    reset = _password_reset(_dana())

    assert services.send_due() == 0
    reset.refresh_from_db()
    assert (reset.status, reset.attempts) == (NotificationStatus.PENDING, 1)
    assert RESET_LINK in reset.body and RESET_LINK in reset.html_body

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.send_due(now=reset.due_at) == 1
    [message] = mailoutbox
    assert RESET_LINK in message.body
    reset.refresh_from_db()
    assert (reset.status, reset.body) == (NotificationStatus.SENT, services.REDACTED)


@pytest.mark.django_db
def test_migration_removes_links_from_messages_sent_before_it_and_nothing_else():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("portal.notifications.migrations.0003_redact_sent_links")
    link = "https://mallrun.example/accounts/invite/MQ/set-password-token/"
    common = {"channel": Channel.EMAIL, "to": "ana@example.com", "body": link, "html_body": link}
    sent_invitation = Notification.objects.create(
        kind="store.invitation", dedupe_key="i1", status=NotificationStatus.SENT, sent_at=timezone.now(), **common
    )
    pending_reset = Notification.objects.create(kind="account.password_reset", dedupe_key="r1", **common)
    sent_offer = Notification.objects.create(
        kind="offer", dedupe_key="o1", status=NotificationStatus.SENT, sent_at=timezone.now(), **common
    )

    migration.redact_sent_links(apps, None)

    rows = {row.pk: (row.body, row.html_body) for row in Notification.objects.all()}
    assert rows == {
        sent_invitation.pk: (services.REDACTED, ""),
        pending_reset.pk: (link, link),
        sent_offer.pk: (link, link),
    }
    assert migration.REDACTED == services.REDACTED
