"""The outbox in the admin: operators see every message and its state, and nobody edits one."""

import pytest
from django.test import Client
from django.urls import reverse

from portal.notifications.models import Notification, NotificationStatus
from portal.tests.factories import make_seller, make_seller_manager, make_user

pytestmark = pytest.mark.django_db


def _row(**fields) -> Notification:
    defaults = {"kind": "offer", "channel": "sms", "to": "+17025550100", "body": "New route", "dedupe_key": "k"}
    return Notification.objects.create(**(defaults | fields))


def test_operator_sees_dead_message_with_its_last_error():
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    _row(status=NotificationStatus.DEAD, attempts=6, last_error="ConnectionError: provider down")

    response = client.get(reverse("admin:notifications_notification_changelist"), {"status__exact": "dead"})

    assert response.status_code == 200
    assert "ConnectionError: provider down" in response.content.decode()


def test_operator_cannot_add_or_edit_messages():
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    row = _row()

    assert client.get(reverse("admin:notifications_notification_add")).status_code == 403
    response = client.post(reverse("admin:notifications_notification_change", args=[row.pk]), {"to": "+1999"})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.to == "+17025550100"


def test_outbox_admin_hidden_from_seller_managers():
    manager = make_seller_manager(seller=make_seller())
    client = Client()
    client.force_login(manager.user)
    _row()

    assert client.get(reverse("admin:notifications_notification_changelist")).status_code == 403


def test_beat_runs_the_outbox_sweeper_and_not_the_old_driver_sweep(settings):
    assert settings.CELERY_BEAT_SCHEDULE["notifications-send-due"] == {
        "task": "notifications.send_due",
        "schedule": 2.0,
    }
    assert "drivers-send-notifications" not in settings.CELERY_BEAT_SCHEDULE


def test_operator_sends_dead_message_again_from_the_changelist():
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    dead = _row(status=NotificationStatus.DEAD, attempts=6, last_error="x")
    sent = _row(dedupe_key="k2", status=NotificationStatus.SENT, attempts=1, sent_at=dead.created_at)

    response = client.post(
        reverse("admin:notifications_notification_changelist"),
        {"action": "send_again", "_selected_action": [dead.pk, sent.pk]},
        follow=True,
    )

    assert "1 message(s) will be sent again." in response.content.decode()
    dead.refresh_from_db()
    sent.refresh_from_db()
    assert (dead.status, dead.attempts, sent.status) == (NotificationStatus.PENDING, 0, NotificationStatus.SENT)


def test_operator_sees_a_message_body_but_not_an_invitation_link():
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    offer = _row(body="New route: $24.00, 3 stops")
    link = "https://mallrun.example/accounts/invite/MQ/set-password-token/"
    invitation = _row(
        kind="store.invitation", channel="email", to="ana@example.com", dedupe_key="k2", body=link, html_body=link
    )

    offer_page = client.get(reverse("admin:notifications_notification_change", args=[offer.pk])).content.decode()
    invitation_page = client.get(
        reverse("admin:notifications_notification_change", args=[invitation.pk])
    ).content.decode()

    assert "New route: $24.00, 3 stops" in offer_page
    assert "set-password-token" not in invitation_page
    assert invitation_page.count("Hidden: this message carries a one-time set-password link.") == 2
