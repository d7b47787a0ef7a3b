import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orders.lifecycle import NOT_COUNTED_FOR_CAPACITY, OrderStatus
from retailers.models import Listing, Store

# Label codes are typed by people at a counter: no 0/O, 1/I/L or U/V look-alikes.
LABEL_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
LABEL_PREFIX = "MR"
LABEL_BODY_LENGTH = 6


def new_label_code() -> str:
    return LABEL_PREFIX + "".join(secrets.choice(LABEL_ALPHABET) for _ in range(LABEL_BODY_LENGTH))


class Order(models.Model):
    """A same-day marketplace order assigned to one store."""

    marketplace_order_id = models.CharField(max_length=64, unique=True)
    # No index of its own: the indexes below all start with the store.
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="orders", db_index=False)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.RECEIVED)
    placed_at = models.DateTimeField()
    deliver_by = models.DateTimeField()
    prep_due_at = models.DateTimeField(help_text="When the store's preparation SLA runs out.")
    customer_name = models.CharField(max_length=120)
    customer_phone = models.CharField(max_length=20, blank=True)
    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    state = models.CharField(max_length=2)
    postal_code = models.CharField(max_length=10)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    delivery_instructions = models.CharField(max_length=300, blank=True)
    requires_pin = models.BooleanField(default=False)
    allows_partial = models.BooleanField(
        default=True, help_text="The marketplace's partial-fulfilment rule: may the store send the rest?"
    )
    problem_reason = models.CharField(max_length=300, blank=True)
    # The marketplace client that sent the order (none for demo and staff orders) and the hash
    # of its canonical request body, which tells an idempotent retry from a conflicting one.
    api_client = models.ForeignKey(
        "orders.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    api_body_sha256 = models.CharField(max_length=64, blank=True)
    # A store's onboarding training order (retailers.onboarding): goes through the real board,
    # labels and handoff, but never reaches the marketplace or a real driver.
    is_training = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # Moves on every change to the order, its lines or packages: the board's cache key.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["deliver_by", "pk"]
        indexes = [
            models.Index(fields=["store", "status"], name="order_store_status"),
            models.Index(fields=["store", "updated_at"], name="order_store_updated"),
            models.Index(fields=["store", "status_changed_at"], name="order_store_changed"),
            # The orders that take up a store's hourly capacity (retailers.eligibility_sql's
            # orders_last_hour_by_store, and every intake's reads): an index-only range count, where
            # the store index alone read and filtered every order of the hour (about 1 µs each).
            models.Index(
                fields=["store", "placed_at"],
                condition=Q(is_training=False) & ~Q(status__in=NOT_COUNTED_FOR_CAPACITY),
                name="order_store_capacity",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_known"),
            models.CheckConstraint(condition=Q(deliver_by__gt=F("placed_at")), name="order_deadline_after_placed"),
        ]

    def __str__(self) -> str:
        return self.marketplace_order_id

    @property
    def number(self) -> str:
        return self.marketplace_order_id


class OrderLine(models.Model):
    # Indexed by the (order, listing) constraint, which starts with it.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    picked = models.PositiveIntegerField(default=0)
    # Units of this line that hold a reservation on the store's stock right now.
    reserved_quantity = models.PositiveIntegerField(default=0)
    unit_price_cents = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=Q(picked__lte=F("quantity")), name="order_line_picked_within_quantity"),
            models.CheckConstraint(
                condition=Q(reserved_quantity__lte=F("quantity")), name="order_line_reserved_within_quantity"
            ),
            models.UniqueConstraint(fields=["order", "listing"], name="order_line_one_per_listing"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.listing.seller_sku}"

    @property
    def missing(self) -> int:
        return self.quantity - self.picked


class Package(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="packages")
    label_code = models.CharField(max_length=12, unique=True)
    sequence = models.PositiveSmallIntegerField(help_text="1-based number of the package within its order.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["order", "sequence"], name="package_sequence_unique"),
            models.CheckConstraint(condition=Q(sequence__gte=1, sequence__lte=20), name="package_sequence_range"),
        ]

    def __str__(self) -> str:
        return self.label_code


class OrderEvent(models.Model):
    """One row for every change to an order: who, when, from which status to which."""

    # Indexed by order_event_order_at, which starts with it.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=40)
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=120, help_text="Who acted, as shown in the timeline.")
    at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["order", "at"], name="order_event_order_at")]

    def __str__(self) -> str:
        return f"{self.order} {self.type} by {self.actor_label}"


# --- The marketplace API: clients, their secrets, webhook endpoints, the event feed, the outbox.


class ApiClient(models.Model):
    """A marketplace client. Requests name it by `key_id` and are signed with one of its
    active secrets; several can be active while a secret is being rotated."""

    name = models.CharField(max_length=100, unique=True)
    key_id = models.CharField(max_length=40, unique=True)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "marketplace API client"

    def __str__(self) -> str:
        return self.name


class ApiSecret(models.Model):
    """One signing secret of a client, encrypted at rest (HMAC needs the secret itself)."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="secrets")
    encrypted_secret = models.TextField()
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API secret"

    def __str__(self) -> str:
        return f"{self.client} secret #{self.pk}{' (revoked)' if self.revoked else ''}"


class WebhookEndpoint(models.Model):
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    encrypted_secret = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["client", "pk"]

    def __str__(self) -> str:
        return self.url


class FeedEvent(models.Model):
    """An order event as the marketplace sees it. Written with the change (seq empty); `seq` is
    given later, under one lock, to events whose transaction has committed, so a poller that
    reads `seq > after` never skips an event that commits late."""

    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    # Unique by a constraint (below), not unique=True: that would add a second index for LIKE
    # searches that nothing makes. The client is indexed by feed_event_client_seq. Every index
    # here is written twice per event (the insert, then its seq).
    event_id = models.CharField(max_length=40)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="feed_events", db_index=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="feed_events")
    type = models.CharField(max_length=40)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["seq", "pk"]
        indexes = [
            models.Index(fields=["client", "seq"], name="feed_event_client_seq"),
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="feed_event_unsequenced"),
        ]
        constraints = [models.UniqueConstraint(fields=["event_id"], name="feed_event_unique_event_id")]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """The outbox: one row per event and endpoint, written in the event's transaction and sent by
    the sweeper when due."""

    event = models.ForeignKey(FeedEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "order", "status"], name="webhook_delivery_order"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"
