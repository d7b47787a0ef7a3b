from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"
    DEAD = "dead", "Gave up"


class Notification(models.Model):
    """One outbound message on one channel to one address: written in the transaction of the change
    that causes it, sent by the sweeper. `due_at` is when a sweeper may next claim it (first send,
    retry after backoff, or after a claim whose worker died)."""

    kind = models.CharField(max_length=60)
    channel = models.CharField(max_length=6, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to = models.CharField(max_length=254, help_text="Email address or phone number, as written.")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    html_body = models.TextField(
        blank=True, help_text="HTML alternative of an email's body; empty for plain text only."
    )
    dedupe_key = models.CharField(max_length=150, help_text="One message per event, channel and address.")
    status = models.CharField(max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    due_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="notification_due"),
            models.Index(fields=["kind", "created_at"], name="notification_kind"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key", "channel", "to"], name="notification_once_per_event"),
            models.CheckConstraint(condition=Q(status__in=NotificationStatus.values), name="notification_status_known"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="notification_channel_known"),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="notification_sent_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} to {self.to}"

    @property
    def idempotency_key(self) -> str:
        """Carried by every send of this row, so a provider (or our file backend) drops a repeat."""
        return f"mallrun-notification-{self.pk}"
