"""The one way to send a message: `notify` writes outbox rows in the caller's transaction;
`send_due` (the beat sweeper) claims due rows and hands them to the email or SMS backend.

Delivery is at least once towards the backend and exactly once at any backend that honours the
idempotency key every send carries (the outbox id): a worker that dies after the backend accepted
a message but before the row was marked sent leaves the row to be claimed again when its claim
expires, and the repeat is dropped by the key."""

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template import Context, Template
from django.template.loader import render_to_string
from django.utils import timezone

from portal.notifications import sms
from portal.notifications.kinds import KINDS
from portal.notifications.models import Channel, Notification, NotificationStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600


@dataclass(frozen=True)
class Recipient:
    user: AbstractBaseUser | None = None
    email: str = ""
    phone: str = ""

    def address(self, channel: str) -> str:
        return (self.email if channel == Channel.EMAIL else self.phone).strip()


def _render(text: str, context: Mapping) -> str:
    return Template(text).render(Context(dict(context), autoescape=False)).strip()


def notify(
    *, recipients: Iterable[Recipient], channels: Iterable[str], kind: str, context: Mapping, dedupe_key: str
) -> list[Notification]:
    """Writes one outbox row per recipient and channel they have an address for, in the caller's
    transaction (refused outside one). The same event (dedupe key, channel, address) twice writes
    nothing new. Side effects: Notification rows; nothing is sent here."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("notify() must run inside the transaction of the change that causes it")
    template = KINDS[kind]
    subject = _render(template.subject, context)
    body = render_to_string(template.text_template, dict(context)).strip() if template.text_template else ""
    body = body or _render(template.body, context)
    html_body = render_to_string(template.html_template, dict(context)) if template.html_template else ""
    sms_body = _render(template.sms, context) if template.sms else body
    rows = []
    channels = list(channels)
    for recipient in recipients:
        for channel in channels:
            to = recipient.address(channel)
            if not to:
                continue
            row, _ = Notification.objects.get_or_create(
                dedupe_key=dedupe_key[:150],
                channel=channel,
                to=to,
                defaults={
                    "kind": kind,
                    "user": recipient.user,
                    "subject": subject[:200],
                    "body": sms_body if channel == Channel.SMS else body,
                    "html_body": html_body if channel == Channel.EMAIL else "",
                },
            )
            rows.append(row)
    return rows


def backoff(attempts: int) -> dt.timedelta:
    """How long to wait after the `attempts`-th failed send: 30 s, 60 s, 120 s … up to an hour."""
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


def _claim_seconds() -> int:
    return int(getattr(settings, "NOTIFICATIONS_CLAIM_SECONDS", 120))


def _claim(*, now: dt.datetime, limit: int) -> list[Notification]:
    """Claims up to `limit` due rows: locks them (skipping rows another sweeper holds), counts the
    attempt and moves `due_at` past the claim time, then commits, so the send happens outside any
    transaction and a dead worker's rows come due again. Rows whose last attempt died unheard
    become dead."""
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=NotificationStatus.PENDING, due_at__lte=now)
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        due = Notification.objects.filter(pk__in=ids, status=NotificationStatus.PENDING, due_at__lte=now)
        due.filter(attempts__gte=MAX_ATTEMPTS).update(
            status=NotificationStatus.DEAD, last_error="the worker stopped during the last attempt"
        )
        claimed = []
        until = now + dt.timedelta(seconds=_claim_seconds())
        for pk in ids:
            # Conditional per row: on SQLite, where FOR UPDATE is a no-op, only one claimer wins.
            if Notification.objects.filter(
                pk=pk, status=NotificationStatus.PENDING, due_at__lte=now, attempts__lt=MAX_ATTEMPTS
            ).update(attempts=F("attempts") + 1, due_at=until):
                claimed.append(pk)
    return list(Notification.objects.filter(pk__in=claimed).order_by("due_at", "pk"))


def _deliver(row: Notification) -> None:
    key = row.idempotency_key
    if row.channel == Channel.EMAIL:
        message = EmailMultiAlternatives(
            subject=row.subject,
            body=row.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[row.to],
            headers={"Message-ID": f"<{key}@mallrun>", "Idempotency-Key": key},
        )
        if row.html_body:
            message.attach_alternative(row.html_body, "text/html")
        message.send(fail_silently=False)
    else:
        sms.get_backend().send(sms.SmsMessage(to=row.to, body=row.body, idempotency_key=key))


def send_due(*, now: dt.datetime | None = None, limit: int = 50) -> int:
    """Sends due outbox rows once each. A row is marked sent only after its backend accepted it; a
    failure waits `backoff(attempts)` as the row's new due time, and the last failure makes it dead
    (shown to operators in the admin). Must run outside a transaction.

    Side effects: emails and SMS; Notification status, due_at, attempts, last_error, sent_at.
    Returns how many rows were sent."""
    now = now or timezone.now()
    sent = 0
    for row in _claim(now=now, limit=limit):
        mine = Notification.objects.filter(pk=row.pk, status=NotificationStatus.PENDING, attempts=row.attempts)
        try:
            _deliver(row)
        except Exception as exc:  # noqa: BLE001 - any backend failure is retried, never lost
            error = f"{type(exc).__name__}: {exc}"[:500]
            logger.warning("notification %s attempt %s failed: %s", row.pk, row.attempts, error)
            if row.attempts >= MAX_ATTEMPTS:
                mine.update(status=NotificationStatus.DEAD, last_error=error)
            else:
                mine.update(due_at=now + backoff(row.attempts), last_error=error)
            continue
        Notification.objects.filter(pk=row.pk, status=NotificationStatus.PENDING).update(
            status=NotificationStatus.SENT, sent_at=timezone.now(), last_error="", **_after_sending(row)
        )
        sent += 1
    return sent


REDACTED = "Removed after sending: this message carried a one-time set-password link."


def _after_sending(row: Notification) -> dict[str, str]:
    """What a sent row keeps of its text: a message that carries a credential (a set-password
    link) drops it once the backend has it, so the link does not sit in the database (or its
    backups) for as long as it stays valid. Until then (pending, retried, dead) the row needs it
    to send; the admin hides it meanwhile."""
    kind = KINDS.get(row.kind)
    if kind is None or not kind.secret:
        return {}
    return {"body": REDACTED, "html_body": ""}


@transaction.atomic
def retry_dead(*, ids: Iterable[int]) -> int:
    """An operator sends dead rows again (after fixing an address or a provider). Side effects:
    those rows pending, due now, attempts back to 0. Returns how many."""
    return Notification.objects.filter(pk__in=list(ids), status=NotificationStatus.DEAD).update(
        status=NotificationStatus.PENDING, due_at=timezone.now(), attempts=0
    )
