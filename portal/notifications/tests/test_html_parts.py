"""Emails with an HTML part: a kind with templates writes the rendered text and HTML on the
outbox row, the sweeper sends both parts, and a kind without templates stays plain text."""

import pytest
from django.core import mail
from django.db import transaction

from portal.notifications import services
from portal.notifications.models import Channel, Notification
from portal.notifications.services import Recipient, notify
from portal.tests.factories import make_user


@pytest.mark.django_db
def test_notify_kind_with_templates_stores_text_and_html_and_sends_both(mailoutbox):
    user = make_user(email="lee@example.com")
    context = {"contact_name": "Lee <Admin>", "store_name": "Kicks & Co", "mall": "Baybrook Mall", "unit": "B-12"}
    context |= {"reference": "A-7", "seller_id": "S1"}
    with transaction.atomic():
        notify(
            recipients=[Recipient(user=user, email=user.email, phone="+17025550100")],
            channels=[Channel.EMAIL, Channel.SMS],
            kind="application.received",
            context=context,
            dedupe_key="application-7",
        )

    email_row = Notification.objects.get(channel=Channel.EMAIL)
    sms_row = Notification.objects.get(channel=Channel.SMS)
    assert email_row.body.startswith("Hello Lee <Admin>,\n\nThank you for applying to bring Kicks & Co (Baybrook Mall")
    assert "<p>Hello Lee &lt;Admin&gt;,</p>" in email_row.html_body
    assert "<strong>Kicks &amp; Co</strong>" in email_row.html_body
    assert sms_row.html_body == ""

    services.send_due()

    [message] = mail.outbox
    assert message.body == email_row.body
    assert message.alternatives == [(email_row.html_body, "text/html")]


@pytest.mark.django_db
def test_notify_kind_without_templates_sends_plain_text_only(mailoutbox):
    user = make_user(email="dana@example.com")
    with transaction.atomic():
        notify(
            recipients=[Recipient(user=user, email=user.email)],
            channels=[Channel.EMAIL],
            kind="route.cancelled",
            context={"mall": "Fashion Show"},
            dedupe_key="route-9",
        )

    services.send_due()

    [message] = mail.outbox
    assert message.body == "Every order on your route at Fashion Show was cancelled: you need not go."
    assert message.alternatives == []
