"""Store onboarding (issue 6): the checklist a store completes before it goes live, the
versioned program agreement, and the training order.

The training order is a real order (`Order.is_training`) at the store with one or two demo
lines. Staff take it through the real board (accept, pick, ready, labels) and hand it to the
market's demo driver with the real handoff (pickup code, label check); the system then delivers
it. It never reaches the marketplace (no feed event or webhook: `orders.outbox`) nor a real
driver (route building skips training orders: `drivers.services.routes_build_for_mall`), and it
holds no stock: its lines reserve nothing."""

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from orders.lifecycle import TERMINAL, OrderStatus
from orders.models import Order, OrderLine
from portal.actors import actor_label_for
from portal.errors import ActionRefused
from retailers.models import (
    AgreementAcceptance,
    Listing,
    Market,
    ProgramAgreement,
    Seller,
    StaffRole,
    Store,
    StoreMembership,
    StoreStatus,
)
from retailers.services import _record_store_event, store_go_live

TRAINING_SELLER_ID = "mallrun-training"
TRAINING_ITEMS = (
    ("TRAINING-TEE", "Training item: T-shirt (not for sale)", 2),
    ("TRAINING-MUG", "Training item: mug (not for sale)", 1),
)
TRAINING_ACTOR = "Mallrun training (system)"
TRAINING_DRIVER_FIRST_NAME = "Training driver"
TRAINING_DRIVER_LAST_NAME = "(demo, not a real person)"
# Statuses in which a store may run a training order: new staff practise after go-live too.
TRAINING_STORE_STATUSES = frozenset({StoreStatus.ONBOARDING, StoreStatus.LIVE, StoreStatus.PAUSED})


# --- the checklist --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    title: str
    done: bool
    detail: str
    url: str
    action: str


@dataclass(frozen=True)
class Checklist:
    items: list[ChecklistItem]

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def done_count(self) -> int:
        return sum(1 for item in self.items if item.done)

    @property
    def complete(self) -> bool:
        return self.done_count == self.total

    @property
    def percent(self) -> int:
        return round(100 * self.done_count / self.total) if self.items else 100


def active_associates(store: Store) -> list[StoreMembership]:
    """Associates who accepted their invitation: an active membership and account, a password
    they set themselves, and at least one log-in."""
    return list(
        StoreMembership.objects.filter(
            store=store, role=StaffRole.ASSOCIATE, is_active=True, user__is_active=True, user__last_login__isnull=False
        )
        .exclude(user__password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .exclude(user__password="")
        .select_related("user")
        .order_by("user__username")
    )


def current_acceptance(store: Store, agreement: ProgramAgreement | None) -> AgreementAcceptance | None:
    if agreement is None:
        return None
    return AgreementAcceptance.objects.filter(store=store, agreement=agreement).select_related("accepted_by").first()


def delivered_training_order(store: Store) -> Order | None:
    return (
        Order.objects.filter(store=store, is_training=True, status=OrderStatus.DELIVERED)
        .order_by("-status_changed_at", "-pk")
        .first()
    )


def checklist_for(store: Store) -> Checklist:
    """The five items of PRODUCT.md's onboarding checklist, each with where it is done."""
    settings_url = reverse("store:store-settings")
    onboarding_url = reverse("store:onboarding")
    hours = store.hours.count()
    associates = active_associates(store)
    agreement = ProgramAgreement.current()
    acceptance = current_acceptance(store, agreement)
    training = delivered_training_order(store)
    if agreement is None:
        agreement_detail = "The program agreement is not published yet; the Mallrun team will publish it."
    elif acceptance is None:
        agreement_detail = f"Read and accept version {agreement.version} of the program agreement."
    else:
        agreement_detail = f"Version {agreement.version} accepted by {acceptance.accepted_by_label}."
    invited = StoreMembership.objects.filter(store=store, role=StaffRole.ASSOCIATE, is_active=True).count()
    if associates:
        team_detail = f"{len(associates)} associate{'s' if len(associates) != 1 else ''} active."
    elif invited:
        team_detail = f"{invited} invited; waiting for one to set a password and log in."
    else:
        team_detail = "Invite at least one associate; they count once they have set a password and logged in."
    return Checklist(
        items=[
            ChecklistItem(
                key="hours",
                title="Opening hours set",
                done=hours > 0,
                detail=f"Open {hours} day{'s' if hours != 1 else ''} a week." if hours else "No opening hours yet.",
                url=f"{settings_url}#settings-heading",
                action="Set opening hours",
            ),
            ChecklistItem(
                key="pickup",
                title="Pickup instructions written",
                done=bool(store.pickup_instructions.strip()),
                detail="Drivers know where to collect packages."
                if store.pickup_instructions.strip()
                else "Tell drivers where in the store they collect packages.",
                url=f"{settings_url}#settings-heading",
                action="Write pickup instructions",
            ),
            ChecklistItem(
                key="team",
                title="An associate invited and active",
                done=bool(associates),
                detail=team_detail,
                url=reverse("store:team"),
                action="Invite your team",
            ),
            ChecklistItem(
                key="agreement",
                title="Program agreement accepted",
                done=acceptance is not None,
                detail=agreement_detail,
                url=f"{onboarding_url}#agreement-heading",
                action="Read the agreement",
            ),
            ChecklistItem(
                key="training",
                title="Training order done end to end",
                done=training is not None,
                detail="Delivered." if training else "Take a training order through the board, labels and handoff.",
                url=f"{onboarding_url}#training-heading",
                action="Run a training order",
            ),
        ]
    )


def store_go_live_if_ready(*, store: Store) -> bool:
    """Takes an onboarding store live by itself when its market has `auto_go_live` and its
    checklist is complete. Returns whether it went live now. Safe to call any number of times."""
    store = Store.objects.select_related("mall__market").get(pk=store.pk)
    if store.status != StoreStatus.ONBOARDING or not store.mall.market.auto_go_live:
        return False
    if not checklist_for(store).complete:
        return False
    try:
        store_go_live(store=store, acting_user=None, automatic=True)
    except ActionRefused:
        return False  # someone else moved it first
    return True


# --- the program agreement --------------------------------------------------------------------------


@transaction.atomic
def agreement_accept(
    *, store: Store, agreement: ProgramAgreement, acting_user: AbstractBaseUser
) -> AgreementAcceptance:
    """The store manager accepts `agreement` for the store. Only the current version can be
    accepted (a page left open while a new version was published is refused); accepting twice
    keeps the first acceptance.

    Side effects: one AgreementAcceptance; one `store.agreement_accepted` event; maybe the
    automatic go-live.
    """
    current = ProgramAgreement.current()
    if current is None or current.pk != agreement.pk:
        raise ActionRefused(
            "A newer version of the program agreement was published: read it and accept that one.",
            code="stale-agreement",
        )
    now = timezone.now()
    acceptance, created = AgreementAcceptance.objects.get_or_create(
        store=store,
        agreement=agreement,
        defaults={"accepted_by": acting_user, "accepted_by_label": actor_label_for(acting_user), "accepted_at": now},
    )
    if created:
        _record_store_event(
            store=store,
            type="store.agreement_accepted",
            acting_user=acting_user,
            at=now,
            data={"version": agreement.version},
        )
        transaction.on_commit(lambda: store_go_live_if_ready(store=store))
    return acceptance


# --- the training order -------------------------------------------------------------------------------


def _training_listings() -> list[Listing]:
    """The demo items, owned by a program seller that has no store, so they are never listed
    for same-day and no seller's catalogue shows them."""
    seller, _ = Seller.objects.get_or_create(
        marketplace_seller_id=TRAINING_SELLER_ID, defaults={"name": "Mallrun training (demo items)"}
    )
    listings = []
    for sku, title, _quantity in TRAINING_ITEMS:
        listing, _ = Listing.objects.get_or_create(
            seller=seller,
            seller_sku=sku,
            defaults={"title": title, "category": "training", "weight_grams": 300},
        )
        listings.append(listing)
    return listings


def open_training_order(store: Store) -> Order | None:
    return (
        Order.objects.filter(store=store, is_training=True)
        .exclude(status__in=TERMINAL)
        .order_by("-created_at", "-pk")
        .first()
    )


@transaction.atomic
def training_order_create(*, store: Store, acting_user: AbstractBaseUser | None) -> Order:
    """A training order at the store: two demo lines, received on the board like a marketplace
    order. One open training order per store at a time.

    Side effects: the demo seller and listings on first use; one Order (is_training) with its
    lines, reserving no stock; one `order.received` event (no feed event, no webhook); one
    `store.training_order_created` store event.
    """
    from orders.services import _record_event

    store = Store.objects.select_for_update().select_related("mall").get(pk=store.pk)
    if store.status not in TRAINING_STORE_STATUSES:
        raise ActionRefused(
            f"{store.name} is {store.get_status_display().lower()}: training orders are for stores in onboarding "
            "or live.",
            code="illegal-transition",
        )
    existing = open_training_order(store)
    if existing is not None:
        raise ActionRefused(
            f"Training order {existing.number} is still under way: finish it on the board first.",
            code="training-open",
        )
    now = timezone.now()
    mall = store.mall
    order = Order.objects.create(
        marketplace_order_id=f"TRAINING-{store.pk}-{secrets.token_hex(3).upper()}",
        store=store,
        is_training=True,
        placed_at=now,
        deliver_by=now + dt.timedelta(hours=3),
        prep_due_at=now + dt.timedelta(minutes=store.prep_sla_minutes),
        customer_name="Training shopper (demo)",
        address_line1=f"{mall.name} (training delivery, nobody drives)",
        city=mall.name[:100],
        state="NA",
        postal_code="00000",
        latitude=mall.latitude + Decimal("0.010000"),
        longitude=mall.longitude,
        delivery_instructions="Training order: the system delivers it once the demo driver has it.",
        created_at=now,
        status_changed_at=now,
        updated_at=now,
    )
    OrderLine.objects.bulk_create(
        OrderLine(order=order, listing=listing, quantity=quantity, reserved_quantity=0, unit_price_cents=0)
        for listing, (_sku, _title, quantity) in zip(_training_listings(), TRAINING_ITEMS, strict=True)
    )
    _record_event(
        order=order,
        type="order.received",
        from_status="",
        to_status=OrderStatus.RECEIVED,
        acting_user=None,
        actor_label=TRAINING_ACTOR,
        at=now,
        data={"training": True},
    )
    _record_store_event(
        store=store,
        type="store.training_order_created",
        acting_user=acting_user,
        at=now,
        data={"order": order.number},
    )
    return order


def training_driver_for(market: Market):
    """The market's demo driver, created on first use: an inactive account nobody can log in
    to, never online, so dispatch never offers it a real route."""
    from drivers.lifecycle import DriverStatus
    from drivers.models import Driver, Vehicle

    username = f"training-driver-{market.slug}"[:150]
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(
            username=username,
            first_name=TRAINING_DRIVER_FIRST_NAME,
            last_name=TRAINING_DRIVER_LAST_NAME,
            is_active=False,
        )
        user.set_unusable_password()
        user.save()
    driver, created = Driver.objects.get_or_create(
        user=user,
        defaults={
            "home_market": market,
            "status": DriverStatus.INACTIVE,
            "status_reason": "Training driver for store onboarding: never receives real routes.",
        },
    )
    if created:
        Vehicle.objects.create(driver=driver)
    return driver


def training_route(order: Order):
    """The current training route of `order` with its accepted offer, or (None, None)."""
    from drivers.models import Offer, OfferStatus, RouteStop

    stop = RouteStop.objects.filter(order=order, is_current=True).select_related("route").first()
    if stop is None:
        return None, None
    offer = (
        Offer.objects.filter(route=stop.route, status__in=[OfferStatus.ACCEPTED, OfferStatus.COMPLETED])
        .select_related("driver__user")
        .first()
    )
    return stop.route, offer


@transaction.atomic
def training_order_call_driver(*, order: Order, acting_user: AbstractBaseUser | None = None):
    """Sends the market's demo driver for a ready training order: a one-stop route already
    assigned to them, with a pickup code the store sees on its onboarding page. Idempotent: a
    second call returns the same offer.

    Side effects: on first call, the demo driver; a Route (assigned), its RouteStop and an
    accepted Offer with a pickup code.
    """
    from drivers.models import Offer, OfferStatus, Route, RouteStatus, RouteStop
    from drivers.services import _new_pickup_code

    order = Order.objects.select_for_update().select_related("store__mall__market").get(pk=order.pk)
    if not order.is_training:
        raise ActionRefused("Only a training order can go to the demo driver.", code="not-training")
    route, offer = training_route(order)
    if offer is not None:
        return offer
    if order.status != OrderStatus.READY:
        raise ActionRefused(
            f"Training order {order.number} is {OrderStatus(order.status).label.lower()}: mark it ready on the "
            "board first.",
            code="not-ready",
        )
    driver = training_driver_for(order.store.mall.market)
    now = timezone.now()
    packages = max(1, order.packages.count())
    route = Route.objects.create(
        mall=order.store.mall,
        status=RouteStatus.ASSIGNED,
        driver=driver,
        packages=packages,
        estimated_miles=Decimal("1.00"),
        estimated_minutes=15,
        depart_at=now,
        created_at=now,
        updated_at=now,
    )
    # The real package count: a stop whose planned count differs is re-planned by dispatch.
    RouteStop.objects.create(
        route=route,
        order=order,
        store=order.store,
        sequence=1,
        eta=now + dt.timedelta(minutes=15),
        planned_packages=packages,
    )
    for _attempt in range(5):
        try:
            with transaction.atomic():  # a live pickup code clash (one in a million): draw again
                offer = Offer.objects.create(
                    route=route,
                    status=OfferStatus.ACCEPTED,
                    pay_cents=0,
                    opened_at=now,
                    due_at=now,
                    driver=driver,
                    accepted_at=now,
                    pickup_code=_new_pickup_code(),
                    close_reason="Training route: the demo driver takes it at once.",
                )
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover
        raise ActionRefused("Could not issue a pickup code; please try again.", code="conflict")
    _record_store_event(
        store=order.store,
        type="store.training_driver_called",
        acting_user=acting_user,
        at=now,
        data={"order": order.number, "driver": str(driver)},
    )
    return offer


@transaction.atomic
def training_order_deliver(*, order: Order) -> bool:
    """The system delivers a training order the demo driver picked up: the order becomes
    delivered, its stop and route done, the offer completed. Returns False (and writes nothing)
    for anything else, so the sweeper can call it on every pass.

    Side effects: one `order.delivered` event (actor: the training system); RouteStop, Route,
    Offer; maybe the automatic go-live after commit.
    """
    from drivers.models import Offer, OfferStatus, Route, RouteStatus, RouteStop, StopStatus
    from orders.delivery import order_deliver

    order = Order.objects.select_for_update().get(pk=order.pk)
    if not order.is_training or order.status != OrderStatus.PICKED_UP:
        return False
    now = timezone.now()
    order_deliver(order=order, acting_user=None, photo_name="", actor_label=TRAINING_ACTOR)
    stop = RouteStop.objects.filter(order=order, is_current=True).first()
    if stop is not None:
        RouteStop.objects.filter(pk=stop.pk).update(status=StopStatus.DELIVERED, finished_at=now)
        Route.objects.filter(pk=stop.route_id).update(status=RouteStatus.DONE, updated_at=now)
        Offer.objects.filter(route_id=stop.route_id, status=OfferStatus.ACCEPTED).update(
            status=OfferStatus.COMPLETED, closed_at=now
        )
    store = order.store
    transaction.on_commit(lambda: store_go_live_if_ready(store=store))
    return True


def training_orders_sweep() -> int:
    """The beat sweeper: sends the demo driver for ready training orders, delivers the picked-up
    ones, and takes onboarding stores with a complete checklist live where their market goes
    live automatically (a checklist item can also complete outside this module: hours, pickup
    instructions, an associate's first log-in). Idempotent. Returns how many things it moved."""
    moved = 0
    ready = Order.objects.filter(is_training=True, status=OrderStatus.READY).exclude(route_stops__is_current=True)
    for order in ready.order_by("pk")[:100]:
        try:
            training_order_call_driver(order=order)
            moved += 1
        except ActionRefused:
            continue
    for order in Order.objects.filter(is_training=True, status=OrderStatus.PICKED_UP).order_by("pk")[:100]:
        moved += training_order_deliver(order=order)
    waiting = (
        Store.objects.filter(status=StoreStatus.ONBOARDING, mall__market__auto_go_live=True)
        .annotate(hours_set=Count("hours"))
        .filter(hours_set__gt=0)
        .exclude(pickup_instructions="")
    )
    for store in waiting.order_by("pk")[:200]:
        moved += store_go_live_if_ready(store=store)
    return moved
