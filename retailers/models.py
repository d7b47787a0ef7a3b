import datetime as dt
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (for example America/Phoenix).")


class Market(models.Model):
    """A metro area. Holds the malls and, later, the drivers and the pay settings."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    # The market's own zone, not its malls': a market has drivers before it has a mall, and a
    # mall added later must not move the instant its drivers' documents expire.
    time_zone = models.CharField(
        max_length=64,
        validators=[validate_time_zone],
        help_text="IANA name, e.g. America/Los_Angeles. Its drivers' documents expire at the end of their date here.",
    )
    auto_go_live = models.BooleanField(
        default=False,
        help_text="Stores of this market go live by themselves as soon as their onboarding checklist is complete.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=~Q(time_zone=""), name="market_time_zone_set")]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Mall(models.Model):
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="malls")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    address = models.CharField(max_length=250)
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    time_zone = models.CharField(
        max_length=64, validators=[validate_time_zone], help_text="IANA name, e.g. America/Phoenix"
    )
    delivery_radius_miles = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("10"), validators=[MinValueValidator(Decimal("0.5"))]
    )
    parking_instructions = models.TextField(blank=True, help_text="Where drivers park.")
    entrance_instructions = models.TextField(blank=True, help_text="Which entrance drivers use to reach the stores.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(delivery_radius_miles__gt=0), name="mall_radius_positive"),
            models.CheckConstraint(condition=Q(latitude__gte=-90, latitude__lte=90), name="mall_latitude_range"),
            models.CheckConstraint(condition=Q(longitude__gte=-180, longitude__lte=180), name="mall_longitude_range"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Seller(models.Model):
    marketplace_seller_id = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StoreStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    APPROVED = "approved", "Approved"
    ONBOARDING = "onboarding", "Onboarding"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    SUSPENDED = "suspended", "Suspended"
    REJECTED = "rejected", "Rejected"


class Store(models.Model):
    """One seller's shop inside one mall."""

    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="stores")
    mall = models.ForeignKey(Mall, on_delete=models.PROTECT, related_name="stores")
    name = models.CharField(max_length=150)
    unit = models.CharField(max_length=30, help_text="Unit number inside the mall, e.g. L2-214.")
    pickup_instructions = models.TextField(blank=True, help_text="Where in the store drivers collect packages.")
    same_day_cutoff = models.TimeField(default=dt.time(17, 0), help_text="Last time (mall local) for same-day orders.")
    prep_sla_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(240)], help_text="Minutes from order to ready."
    )
    hourly_capacity = models.PositiveIntegerField(
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(500)],
        help_text="Orders the store can pack per hour.",
    )
    status = models.CharField(max_length=12, choices=StoreStatus.choices, default=StoreStatus.APPLIED)
    paused_reason = models.CharField(max_length=200, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["seller", "mall", "unit"], name="store_unique_unit_per_seller_mall"),
            models.CheckConstraint(condition=Q(prep_sla_minutes__gte=1), name="store_prep_sla_positive"),
            models.CheckConstraint(condition=Q(hourly_capacity__gte=1), name="store_capacity_positive"),
            models.CheckConstraint(
                condition=~Q(status=StoreStatus.PAUSED) | ~Q(paused_reason=""), name="store_paused_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_paused(self) -> bool:
        return self.status == StoreStatus.PAUSED

    def local_now(self, now: dt.datetime | None = None) -> dt.datetime:
        from django.utils import timezone

        return (now or timezone.now()).astimezone(self.mall.tz)


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class StoreHours(models.Model):
    """Opening hours for one weekday, in the mall's local time. A day without a row is closed.
    `closes_at` at or before `opens_at` means the store closes after midnight; equal times mean
    open around the clock."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["store", "weekday"]
        verbose_name_plural = "store hours"
        constraints = [
            models.UniqueConstraint(fields=["store", "weekday"], name="store_hours_one_row_per_weekday"),
            models.CheckConstraint(condition=Q(weekday__gte=0, weekday__lte=6), name="store_hours_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    @property
    def around_the_clock(self) -> bool:
        return self.opens_at == self.closes_at


class StaffRole(models.TextChoices):
    ASSOCIATE = "associate", "Associate"
    MANAGER = "manager", "Store manager"


class StoreMembership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="store_memberships")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=StaffRole.choices, default=StaffRole.ASSOCIATE)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "store"], name="store_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.store} ({self.get_role_display()})"

    @property
    def is_manager(self) -> bool:
        return self.role == StaffRole.MANAGER


class SellerMembership(models.Model):
    """A seller manager: sees and changes their seller's stores, listings, stock and orders in
    the admin."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="seller_memberships")
    seller = models.ForeignKey(Seller, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "seller"], name="seller_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.seller}"


class SizeClass(models.TextChoices):
    SMALL = "small", "Small (fits a shoebox)"
    MEDIUM = "medium", "Medium (fits a carry-on)"
    LARGE = "large", "Large (fits a car boot)"
    OVERSIZE = "oversize", "Oversize"


def normalize_category(value: str) -> str:
    """A category as it is stored and compared: trimmed, lowercase ("Apparel " is "apparel"),
    for listings and the program limits alike, so the limits' category check matches whoever
    typed either side."""
    return value.strip().lower()


class Listing(models.Model):
    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="listings")
    seller_sku = models.CharField(max_length=60)
    marketplace_item_id = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=60)
    weight_grams = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    size_class = models.CharField(max_length=10, choices=SizeClass.choices, default=SizeClass.SMALL)
    hazmat = models.BooleanField(default=False)

    class Meta:
        ordering = ["seller", "seller_sku"]
        constraints = [
            models.UniqueConstraint(fields=["seller", "seller_sku"], name="listing_unique_sku_per_seller"),
            models.CheckConstraint(condition=Q(weight_grams__gte=1), name="listing_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.seller_sku} · {self.title}"


class Stock(models.Model):
    """Same-day stock of one listing at one store. Available = on hand − reserved."""

    # The positive fields carry their own "not negative" checks in the database. The store keeps
    # its own index although the unique (store, listing) starts with it: the eligibility
    # recompute's per-mall plans read stock store by store through it (dropping it made a mall's
    # statement about 0.2 s slower on the bench).
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="stock")
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="stock")
    on_hand = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "stock"
        constraints = [
            models.UniqueConstraint(fields=["store", "listing"], name="stock_unique_listing_per_store"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.listing.seller_sku} at {self.store}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StoreEvent(models.Model):
    """One row for every change of a store's status or settings: who, when, why."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    from_status = models.CharField(max_length=12, choices=StoreStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=StoreStatus.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=120)
    at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.store} {self.type}"


# --- Same-day eligibility (issue 5) -------------------------------------------------------------


class ProgramLimits(models.Model):
    """The program's limits on what can go same-day. One row; without it the defaults apply."""

    max_weight_grams = models.PositiveIntegerField(default=22_680, help_text="Heaviest listing allowed (50 lb).")
    allowed_size_classes = models.CharField(
        max_length=60, default="small,medium,large", help_text="Comma-separated size classes allowed."
    )
    allowed_categories = models.TextField(
        blank=True, help_text="Comma-separated categories allowed; empty allows every category."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "program limits"
        constraints = [models.CheckConstraint(condition=Q(max_weight_grams__gte=1), name="program_limits_weight")]

    def __str__(self) -> str:
        return "Program limits"

    @staticmethod
    def _split(value: str) -> frozenset[str]:
        return frozenset(part.strip() for part in value.split(",") if part.strip())

    @staticmethod
    def categories_list(value: str) -> list[str]:
        """The categories of a comma-separated text, normalised, each once, in the order given."""
        return list(dict.fromkeys(normalize_category(part) for part in value.split(",") if part.strip()))

    def facts(self):
        from retailers.eligibility import ProgramLimitFacts

        return ProgramLimitFacts(
            max_weight_grams=self.max_weight_grams,
            allowed_size_classes=self._split(self.allowed_size_classes),
            allowed_categories=frozenset(self.categories_list(self.allowed_categories)),
        )

    @classmethod
    def current(cls) -> "ProgramLimits":
        return cls.objects.order_by("pk").first() or cls()


class EligibilityStoreState(models.Model):
    """The store-level half of eligibility at the last recompute: whether the store is a
    candidate (live or paused), its reasons as bits, and today's cutoff. The beat sweeper
    compares a fresh state with this row to find stores whose clock-driven state changed."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, primary_key=True, related_name="eligibility_state")
    candidate = models.BooleanField()
    reason_bits = models.PositiveIntegerField()
    eligible_until = models.DateTimeField()
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.store}: {self.reason_bits}"


# An eligibility result's id: its mall's id in the high 32 bits, its listing's in the low ones.
RESULT_ID_MALL_FACTOR = 1 << 32


def result_id(*, listing_id: int, mall_id: int) -> int:
    return mall_id * RESULT_ID_MALL_FACTOR + listing_id


def result_pair(value: str) -> tuple[int, int] | None:
    """(listing id, mall id) of an eligibility result's id given as text; None if it is none."""
    if not value.isascii() or not value.isdigit() or int(value) >= 1 << 63:
        return None
    mall_id, listing_id = divmod(int(value), RESULT_ID_MALL_FACTOR)
    return listing_id, mall_id


def result_id_sql(*, listing: str, mall: str) -> str:
    """The same in SQL (SQLite and PostgreSQL), over two column expressions."""
    return f"(CAST({mall} AS BIGINT) * {RESULT_ID_MALL_FACTOR} + {listing})"


class EligibilityResult(models.Model):
    """Same-day eligibility of one listing in one mall. Written only by the set-based recompute
    in retailers.eligibility_sql; `computed_at` moves when the result changes, which is what the
    feed's `changed_since` pages on."""

    # The id packs the pair (`result_id`): the recompute writes it in SQL (no sequence to call per
    # row), and a listing's row in a mall keeps its id across rewrites. On PostgreSQL the table's
    # primary key is the pair itself and the id has no index (migration 0013): look rows up by the
    # pair (`result_pair` turns an id back into it).
    id = models.BigIntegerField(primary_key=True, editable=False, help_text="mall id × 2³² + listing id")
    # No single-column indexes: the unique (listing, mall) and the feed index cover both. No
    # database-level foreign keys either: this derived table is rewritten in bulk, where per-row
    # RI triggers (run at commit, locking each listing) cost ten times the recompute itself;
    # deletes still cascade through the ORM and the recompute removes rows left without a pair.
    # On PostgreSQL the table is partitioned by mall (migration 0013, retailers.eligibility_partitions).
    listing = models.ForeignKey(
        Listing, on_delete=models.CASCADE, related_name="eligibility", db_index=False, db_constraint=False
    )
    mall = models.ForeignKey(Mall, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    eligible = models.BooleanField()
    reason_bits = models.PositiveIntegerField(help_text="The reason codes as bits (retailers.eligibility.BIT).")
    hint = models.CharField(max_length=300, blank=True)
    eligible_until = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["listing", "mall"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "mall"], name="eligibility_one_row_per_listing_mall"),
            models.CheckConstraint(
                condition=Q(eligible=True, reason_bits=0) | Q(eligible=False, reason_bits__gt=0),
                name="eligibility_eligible_iff_no_reason",
            ),
            models.CheckConstraint(
                condition=Q(id=F("mall_id") * RESULT_ID_MALL_FACTOR + F("listing_id"))
                & Q(listing_id__lt=RESULT_ID_MALL_FACTOR),
                name="eligibility_id_packs_mall_and_listing",
            ),
        ]
        indexes = [models.Index(fields=["mall", "computed_at", "id"], name="eligibility_feed")]

    def __str__(self) -> str:
        # Shown to seller managers (the listing page's row per mall, the result's page title).
        return f"{self.listing.seller_sku} in {self.mall.name}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is None:
            self.pk = result_id(listing_id=self.listing_id, mall_id=self.mall_id)
        super().save(*args, **kwargs)

    @property
    def reasons(self) -> list[str]:
        from retailers.eligibility import codes_from_bits

        return codes_from_bits(self.reason_bits)


class ImportKind(models.TextChoices):
    LISTINGS = "listings", "Listings"
    STOCK = "stock", "Stock"


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One uploaded listings or stock file, previewed (dry run) or applied; big files run in a
    Celery task and the admin page polls `status` and `progress` (engineer K, issue 5 point 5)."""

    seller = models.ForeignKey(Seller, on_delete=models.CASCADE, related_name="import_jobs")
    kind = models.CharField(max_length=10, choices=ImportKind.choices)
    dry_run = models.BooleanField(default=True)
    file_name = models.CharField(max_length=200)
    data = models.BinaryField()
    status = models.CharField(max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of rows checked.")
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="import_job_progress_percent"),
        ]

    def __str__(self) -> str:
        action = "Preview" if self.dry_run else "Import"
        return f"{action} of {self.kind} from {self.file_name}"

    @property
    def finished(self) -> bool:
        return self.status in {ImportJobStatus.SUCCEEDED, ImportJobStatus.FAILED}


# --- Store onboarding (issue 6 part B) -----------------------------------------------------------


class ProgramAgreement(models.Model):
    """A version of the program agreement a store accepts during onboarding. The newest
    published version is the one stores must accept; older acceptances do not count."""

    version = models.CharField(max_length=20, unique=True)
    text = models.TextField()
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["-published_at", "-pk"]
        get_latest_by = "published_at"

    def __str__(self) -> str:
        return f"Program agreement v{self.version}"

    @classmethod
    def current(cls, now: dt.datetime | None = None) -> "ProgramAgreement | None":
        from django.utils import timezone

        return cls.objects.filter(published_at__lte=now or timezone.now()).order_by("-published_at", "-pk").first()


class AgreementAcceptance(models.Model):
    """Who accepted which agreement version for which store, and when."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="agreement_acceptances")
    agreement = models.ForeignKey(ProgramAgreement, on_delete=models.PROTECT, related_name="acceptances")
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    accepted_by_label = models.CharField(max_length=120)
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["-accepted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["store", "agreement"], name="agreement_accepted_once_per_store"),
        ]

    def __str__(self) -> str:
        return f"{self.store} accepted {self.agreement} ({self.accepted_by_label})"


# --- Store applications (issue 6 part A) ---------------------------------------------------------


class StoreCategory(models.TextChoices):
    """What a store sells, as applicants choose it; the codes are the listing categories in use."""

    APPAREL = "apparel", "Clothing"
    FOOTWEAR = "footwear", "Shoes"
    ACCESSORIES = "accessories", "Bags and accessories"
    BEAUTY = "beauty", "Beauty"
    CARE = "care", "Personal care"
    ELECTRONICS = "electronics", "Electronics"
    HOME = "home", "Home"
    KITCHEN = "kitchen", "Kitchen"
    BOOKS = "books", "Books"
    STATIONERY = "stationery", "Stationery and gifts"
    TOYS = "toys", "Toys and games"
    SPORTS = "sports", "Sports and outdoors"


class ApplicationStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class StoreApplication(models.Model):
    """A seller's application to bring one mall store into the program (/join/). An operator
    approves it (which creates the store in `onboarding`) or rejects it with a reason.

    `hours` maps the weekday ("0" = Monday) to ["HH:MM", "HH:MM"] or null when closed; a closing
    time at or before the opening time means after midnight, as in StoreHours."""

    marketplace_seller_id = models.CharField(max_length=40)
    seller_name = models.CharField(max_length=120)
    store_name = models.CharField(max_length=150)
    mall = models.ForeignKey(Mall, on_delete=models.PROTECT, related_name="applications")
    unit = models.CharField(max_length=30)
    contact_name = models.CharField(max_length=120)
    email = models.EmailField(max_length=254)
    phone = models.CharField(max_length=32)
    hours = models.JSONField(default=dict)
    categories = models.JSONField(default=list)
    estimated_daily_orders = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5000)])
    status = models.CharField(max_length=10, choices=ApplicationStatus.choices, default=ApplicationStatus.APPLIED)
    reason = models.CharField(max_length=500, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    store = models.OneToOneField(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="application")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="store_application_queue")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ApplicationStatus.values), name="store_application_status_known"
            ),
            models.CheckConstraint(
                condition=Q(status=ApplicationStatus.APPLIED) | Q(reviewed_at__isnull=False),
                name="store_application_reviewed_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status=ApplicationStatus.REJECTED) | ~Q(reason=""),
                name="store_application_rejected_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(estimated_daily_orders__gte=1), name="store_application_orders_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store_name} at {self.mall} ({self.get_status_display()})"

    @property
    def reference(self) -> str:
        return f"A-{self.pk}"

    def hour_spans(self) -> dict[int, tuple[dt.time, dt.time] | None]:
        """weekday → (opens, closes), or None when closed: what store_update_settings takes."""
        spans: dict[int, tuple[dt.time, dt.time] | None] = {}
        for day in Weekday:
            span = (self.hours or {}).get(str(day.value))
            spans[day.value] = (dt.time.fromisoformat(span[0]), dt.time.fromisoformat(span[1])) if span else None
        return spans

    def category_labels(self) -> list[str]:
        labels = dict(StoreCategory.choices)
        return [labels.get(code, code) for code in self.categories or []]


class EligibilityRequestKind(models.IntegerChoices):
    LISTING = 1, "listing"
    STORE = 2, "store"
    MALL = 3, "mall"


class EligibilityRequest(models.Model):
    """An outbox row: the eligibility of this listing, store or mall must be recomputed. Written
    by retailers.eligibility_hooks in the transaction of the change (so a commit always leaves
    it and a rollback never does), claimed and deleted by the beat sweeper in the transaction of
    the recompute's writes (retailers.eligibility_requests). One row per (kind, object): a burst
    of changes to one listing is one row."""

    kind = models.PositiveSmallIntegerField(choices=EligibilityRequestKind.choices)
    object_id = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="eligibility_request_one_per_object"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.object_id}"
