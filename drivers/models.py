import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from drivers.lifecycle import DriverStatus, OfferStatus
from portal.localtime import end_of_local_day
from retailers.models import Market


class Driver(models.Model):
    """A gig driver: one person with a vehicle, documents, a home market and, while online, a
    position."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="driver")
    home_market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="drivers")
    phone = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=12, choices=DriverStatus.choices, default=DriverStatus.APPLICANT)
    status_reason = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # Availability: where the driver is and whether they take offers right now.
    is_online = models.BooleanField(default=False)
    online_market = models.ForeignKey(
        Market, null=True, blank=True, on_delete=models.SET_NULL, related_name="online_drivers"
    )
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    location_updated_at = models.DateTimeField(null=True, blank=True)
    availability_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user__username"]
        indexes = [models.Index(fields=["online_market", "is_online", "status"], name="driver_supply")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DriverStatus.values), name="driver_status_known"),
            models.CheckConstraint(
                condition=~Q(status=DriverStatus.DEACTIVATED) | ~Q(status_reason=""),
                name="driver_deactivated_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(is_online=False) | Q(online_market__isnull=False), name="driver_online_has_market"
            ),
            models.CheckConstraint(
                condition=Q(is_online=False) | Q(status=DriverStatus.ACTIVE), name="driver_online_only_when_active"
            ),
        ]

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def name(self) -> str:
        return str(self)


class VehicleType(models.TextChoices):
    CAR = "car", "Car"
    SUV = "suv", "SUV"
    VAN = "van", "Van"
    PICKUP = "pickup", "Pickup truck"


class Vehicle(models.Model):
    driver = models.OneToOneField(Driver, on_delete=models.CASCADE, related_name="vehicle")
    type = models.CharField(max_length=10, choices=VehicleType.choices, default=VehicleType.CAR)
    make_model = models.CharField(max_length=80, blank=True)
    plate = models.CharField(max_length=12, blank=True)
    doors = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(2), MaxValueValidator(6)])
    capacity_units = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(200)],
        help_text="How many packages (package units) fit.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(capacity_units__gte=1), name="vehicle_capacity_positive"),
            models.CheckConstraint(condition=Q(doors__gte=2, doors__lte=6), name="vehicle_doors_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} ({self.capacity_units} packages)"


class DocumentKind(models.TextChoices):
    LICENCE = "licence", "Driving licence"
    INSURANCE = "insurance", "Vehicle insurance"


REQUIRED_DOCUMENTS = frozenset(DocumentKind.values)


class DriverDocument(models.Model):
    """A licence or insurance policy. Valid through its expiry date, inclusive, in the local time
    of the driver's home market: until `valid_until`, the end of that day there."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=10, choices=DocumentKind.choices)
    number = models.CharField(max_length=40, blank=True)
    expires_on = models.DateField()
    # Stored, so every check (in SQL too) compares one instant with now; kept in step by save()
    # and by drivers.services.documents_refresh_valid_until when the market's zone changes.
    valid_until = models.DateTimeField(editable=False)
    # Set when the driver was told it expired, so the sweep tells them once.
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    # Set when the driver was reminded that it runs out soon, so the sweep reminds them once.
    expiry_reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["driver", "kind"]
        constraints = [models.UniqueConstraint(fields=["driver", "kind"], name="driver_document_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} until {self.expires_on}"

    def save(self, *args, **kwargs) -> None:
        # Derived from this row's own date and its driver's market, whichever way the row is
        # written (admin inline, services, seeds); it writes nothing else.
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "expires_on" in update_fields:
            valid_until = self.valid_until_for(self.driver.home_market)
            if self.valid_until is not None and valid_until != self.valid_until:
                # A new expiry date (a renewal, a correction): the driver was reminded of and told
                # about the old one; the documents sweep must handle the new one when it comes.
                self.expiry_notified_at = self.expiry_reminded_at = None
            self.valid_until = valid_until
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "valid_until", "expiry_notified_at", "expiry_reminded_at"}
        super().save(*args, **kwargs)

    def valid_until_for(self, market: Market) -> dt.datetime:
        return end_of_local_day(self.expires_on, market.tz)

    def is_valid_at(self, now: dt.datetime) -> bool:
        return now < self.valid_until


class DriverEvent(models.Model):
    """One row for every change to a driver: status, availability, documents, offers answered."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    from_status = models.CharField(max_length=12, choices=DriverStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=DriverStatus.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=120)
    at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["driver", "at"], name="driver_event_driver_at")]

    def __str__(self) -> str:
        return f"{self.driver} {self.type}"


class DriverShift(models.Model):
    """A time the driver said they would be working in a market. While it covers now, an active
    driver with valid documents counts as driver supply there even when not tapped online (between
    offers, a few minutes late): drivers.selectors.driver_supply_market_ids."""

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="shifts")
    # The driver's home market when the shift was scheduled: a later move does not move it.
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="driver_shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [
            # The supply lookup: shifts not yet ended (a short range at the end of the index) that
            # have started.
            models.Index(fields=["ends_at", "starts_at"], name="driver_shift_supply"),
            models.Index(fields=["driver", "starts_at"], name="driver_shift_driver"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="driver_shift_ends_after_start")
        ]

    def __str__(self) -> str:
        return f"{self.driver}: {self.local_label()}"

    def covers(self, now: dt.datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def local_label(self) -> str:
        """The shift in its market's local time: "Tue Nov 24, 5:00 PM – 9:00 PM" (the end's day
        is named too when it is another local day)."""
        tz = self.market.tz
        starts, ends = self.starts_at.astimezone(tz), self.ends_at.astimezone(tz)
        end = _clock(ends) if ends.date() == starts.date() else f"{_day(ends)}, {_clock(ends)}"
        return f"{_day(starts)}, {_clock(starts)} – {end}"


def _day(moment: dt.datetime) -> str:
    return f"{moment:%a %b} {moment.day}"


def _clock(moment: dt.datetime) -> str:
    return f"{(moment.hour - 1) % 12 + 1}:{moment:%M %p}"


class MarketPaySettings(models.Model):
    """Pay rules of one market (PRODUCT.md "Routes and pay"). A market without a row uses the
    defaults below."""

    market = models.OneToOneField(Market, on_delete=models.CASCADE, related_name="pay_settings")
    base_cents = models.PositiveIntegerField(default=300)
    per_stop_cents = models.PositiveIntegerField(default=150)
    per_mile_cents = models.PositiveIntegerField(default=60)
    hourly_floor_cents = models.PositiveIntegerField(default=1800)
    reoffer_bump_cents = models.PositiveIntegerField(default=100)
    reoffer_bump_cap_cents = models.PositiveIntegerField(default=800)
    wait_grace_minutes = models.PositiveSmallIntegerField(default=5)
    wait_per_minute_cents = models.PositiveIntegerField(default=30)
    circuity_factor = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("1.30"))
    offer_window_seconds = models.PositiveSmallIntegerField(
        default=60, help_text="How long the drivers an offer reaches have to answer it (at least 5 seconds)."
    )
    first_wave_size = models.PositiveSmallIntegerField(default=2)
    max_stops = models.PositiveSmallIntegerField(default=8)
    route_capacity_units = models.PositiveSmallIntegerField(
        default=12, help_text="Packages a route may hold: what a typical car in the market carries."
    )

    class Meta:
        verbose_name_plural = "market pay settings"
        constraints = [
            models.CheckConstraint(condition=Q(first_wave_size__gte=1), name="pay_first_wave_positive"),
            models.CheckConstraint(condition=Q(max_stops__gte=1), name="pay_max_stops_positive"),
            models.CheckConstraint(condition=Q(circuity_factor__gte=1), name="pay_circuity_at_least_one"),
            # Below these, dispatch stops without a word: every offer expires as it is sent, or
            # no order fits a route.
            models.CheckConstraint(
                condition=Q(offer_window_seconds__gte=5),
                name="pay_offer_window_at_least_5_seconds",
                violation_error_message="Give drivers at least 5 seconds to answer an offer.",
            ),
            models.CheckConstraint(
                condition=Q(route_capacity_units__gte=1),
                name="pay_route_capacity_positive",
                violation_error_message="A route must hold at least one package.",
            ),
        ]

    def __str__(self) -> str:
        return f"Pay in {self.market}"

    @property
    def rules(self):
        from drivers.pay import PayRules

        return PayRules(
            base_cents=self.base_cents,
            per_stop_cents=self.per_stop_cents,
            per_mile_cents=self.per_mile_cents,
            hourly_floor_cents=self.hourly_floor_cents,
            reoffer_bump_cents=self.reoffer_bump_cents,
            reoffer_bump_cap_cents=self.reoffer_bump_cap_cents,
            wait_grace_minutes=self.wait_grace_minutes,
            wait_per_minute_cents=self.wait_per_minute_cents,
        )


class RouteStatus(models.TextChoices):
    OFFERING = "offering", "Being offered"
    ASSIGNED = "assigned", "Assigned"
    UNDER_WAY = "under_way", "Under way"
    DONE = "done", "Done"
    AT_RISK = "at_risk", "Nobody took it: operator alerted"
    CANCELLED = "cancelled", "Cancelled"


ROUTE_CURRENT = (RouteStatus.OFFERING, RouteStatus.ASSIGNED, RouteStatus.UNDER_WAY, RouteStatus.AT_RISK)


class Route(models.Model):
    """One driver trip: pickups at one or more stores of one mall, then drops in order."""

    mall = models.ForeignKey("retailers.Mall", on_delete=models.PROTECT, related_name="routes")
    status = models.CharField(max_length=10, choices=RouteStatus.choices, default=RouteStatus.OFFERING)
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.PROTECT, related_name="routes")
    packages = models.PositiveSmallIntegerField()
    estimated_miles = models.DecimalField(max_digits=6, decimal_places=2)
    estimated_minutes = models.PositiveIntegerField()
    depart_at = models.DateTimeField(help_text="When the driver should leave the mall.")
    reoffers = models.PositiveSmallIntegerField(default=0)
    wait_pay_cents = models.PositiveIntegerField(default=0)
    alert = models.CharField(max_length=300, blank=True, help_text="Why an operator must step in.")
    # How many times the route was re-planned (an order left it, a package count changed, the
    # driver gave part of it back): each re-plan is one notification to the driver.
    replans = models.PositiveSmallIntegerField(default=0)
    # Why it was last re-planned, in the words its driver was told ("order … was cancelled").
    replan_reason = models.CharField(max_length=300, blank=True)
    # The route a driver gave back part of: the unstarted part rides on this new route.
    split_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="split_routes")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["mall", "status"], name="route_mall_status")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RouteStatus.values), name="route_status_known"),
            models.CheckConstraint(
                condition=Q(driver__isnull=False)
                | Q(status__in=[RouteStatus.OFFERING, RouteStatus.AT_RISK, RouteStatus.CANCELLED]),
                name="route_assigned_has_driver",
            ),
        ]

    def __str__(self) -> str:
        return f"Route {self.pk} at {self.mall}"


class StopStatus(models.TextChoices):
    PENDING = "pending", "To pick up"
    PICKED_UP = "picked_up", "On board"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERABLE = "undeliverable", "Undeliverable: returning"
    RETURNED = "returned", "Returned to the store"
    CANCELLED = "cancelled", "Cancelled"
    # Left this route for another one: re-planned off it, or given back by the driver.
    MOVED = "moved", "Moved to another route"


class RouteStop(models.Model):
    """One order on a route: picked up at its store, dropped at its address."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="stops")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="route_stops")
    store = models.ForeignKey("retailers.Store", on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=14, choices=StopStatus.choices, default=StopStatus.PENDING)
    # False once the route is cancelled or re-planned: an order is on one current route at most.
    is_current = models.BooleanField(default=True)
    eta = models.DateTimeField()
    miles_from_previous = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    # The package units the plan counted: the real count of a ready order, or an estimate from
    # its lines for an order still being packed (corrected by a re-plan when it is ready).
    planned_packages = models.PositiveSmallIntegerField(default=1)
    # Set when the order was routed before it was ready: when the store should have it packed.
    ready_expected_at = models.DateTimeField(null=True, blank=True)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    photo = models.ImageField(upload_to="proof/%Y/%m/", blank=True)
    pin_verified = models.BooleanField(default=False)
    problem_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["route", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["route", "sequence"], name="route_stop_sequence_unique"),
            models.UniqueConstraint(
                fields=["order"], condition=Q(is_current=True), name="route_stop_one_current_route_per_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.route} #{self.sequence}: {self.order}"


class Offer(models.Model):
    """One round of offering a route to drivers. Waves widen the pool until someone accepts or
    the offer expires; an expired or forfeited offer is followed by a new one with a pay bump."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="offers")
    status = models.CharField(max_length=10, choices=OfferStatus.choices, default=OfferStatus.OPEN)
    attempt = models.PositiveSmallIntegerField(default=0, help_text="0 for the first offer, 1 for the first re-offer…")
    pay_cents = models.PositiveIntegerField()
    bump_cents = models.PositiveIntegerField(default=0)
    wave = models.PositiveSmallIntegerField(default=0)
    opened_at = models.DateTimeField(default=timezone.now)
    # The sweeper's due time: when the current wave's answer window closes.
    due_at = models.DateTimeField(db_index=True)
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.PROTECT, related_name="offers_won")
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    pickup_code = models.CharField(max_length=6, blank=True, help_text="Shown by the driver at each store.")
    close_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OfferStatus.values), name="offer_status_known"),
            # Exactly one driver ever wins a route.
            models.UniqueConstraint(
                fields=["route"],
                condition=Q(status__in=[OfferStatus.ACCEPTED, OfferStatus.COMPLETED]),
                name="offer_one_accepted_per_route",
            ),
            models.UniqueConstraint(
                fields=["route"], condition=Q(status=OfferStatus.OPEN), name="offer_one_open_per_route"
            ),
            models.UniqueConstraint(
                fields=["pickup_code"], condition=Q(status=OfferStatus.ACCEPTED), name="offer_pickup_code_unique_live"
            ),
            models.CheckConstraint(
                condition=Q(status=OfferStatus.OPEN)
                | Q(status=OfferStatus.EXPIRED)
                | Q(status=OfferStatus.WITHDRAWN)
                | Q(driver__isnull=False, accepted_at__isnull=False),
                name="offer_taken_has_driver",
            ),
        ]

    def __str__(self) -> str:
        return f"Offer {self.pk} for route {self.route_id}"


class Answer(models.TextChoices):
    NOT_OFFERED = "not_offered", "Not offered"
    PENDING = "pending", "No answer yet"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    TIMED_OUT = "timed_out", "Did not answer in time"
    TAKEN = "taken", "Taken by another driver"
    LATE = "late", "Tried to accept after it was taken"
    OFFLINE = "offline", "Went offline before answering"


class OfferRecipient(models.Model):
    """One row per driver an offer considered: offered (when, which wave, the answer) or not
    offered, with the reason an operator can read."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="recipients")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="offer_rows")
    rank = models.PositiveSmallIntegerField(null=True, blank=True)
    distance_miles = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    wave = models.PositiveSmallIntegerField(null=True, blank=True)
    offered_at = models.DateTimeField(null=True, blank=True)
    answer = models.CharField(max_length=12, choices=Answer.choices, default=Answer.NOT_OFFERED)
    answered_at = models.DateTimeField(null=True, blank=True)
    not_offered_reason = models.CharField(max_length=200, blank=True)
    notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["offer", "rank", "pk"]
        constraints = [models.UniqueConstraint(fields=["offer", "driver"], name="offer_recipient_unique")]
        indexes = [models.Index(fields=["driver", "offered_at"], name="offer_recipient_driver_at")]

    def __str__(self) -> str:
        return f"{self.driver} · {self.offer}: {self.get_answer_display()}"


class Handoff(models.Model):
    """Chain of custody: which packages a store handed to which driver, who handed them, when."""

    route = models.ForeignKey(Route, on_delete=models.PROTECT, related_name="handoffs")
    store = models.ForeignKey("retailers.Store", on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.PROTECT, related_name="handoffs")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    staff_label = models.CharField(max_length=120)
    at = models.DateTimeField(default=timezone.now)
    labels = models.JSONField(default=list)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    wait_pay_cents = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [models.UniqueConstraint(fields=["route", "store"], name="handoff_one_per_route_store")]

    def __str__(self) -> str:
        return f"{self.store} → {self.driver} ({len(self.labels)} packages)"


class StoreCheckIn(models.Model):
    """The driver says they are at the store's counter: the start of any paid wait."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="check_ins")
    store = models.ForeignKey("retailers.Store", on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    store_was_ready = models.BooleanField(
        default=False,
        help_text="Every order the driver came for was ready when they checked in: their wait is not paid.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route", "store", "driver"], name="check_in_once")]

    def __str__(self) -> str:
        return f"{self.driver} at {self.store}"
