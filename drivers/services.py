"""Every write about drivers, routes, offers and handoffs. Status changes check the declared
tables in `drivers.lifecycle`, apply themselves with a conditional UPDATE (… WHERE status =
<expected>) so two clicks or two workers cannot both win, and record an event row."""

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from drivers import pay as pay_rules
from drivers import routing
from drivers.lifecycle import DRIVER_TRANSITIONS, OFFER_TRANSITIONS, DriverStatus, OfferStatus, sources_of
from drivers.models import (
    REQUIRED_DOCUMENTS,
    Answer,
    Driver,
    DriverDocument,
    DriverEvent,
    DriverShift,
    Handoff,
    MarketPaySettings,
    Offer,
    OfferRecipient,
    Route,
    RouteStatus,
    RouteStop,
    StopStatus,
    StoreCheckIn,
)
from drivers.selectors import active_route_for_driver, drivers_free_in_market
from orders import delivery as order_delivery
from orders.lifecycle import OrderStatus
from orders.models import Order
from portal.actors import actor_label_for
from portal.errors import ActionRefused
from portal.localtime import in_zone
from portal.notifications.models import Channel
from portal.notifications.services import Recipient, notify
from retailers.eligibility_hooks import eligibility_after_driver_supply_change
from retailers.models import Mall, Market, Store, StoreMembership

logger = logging.getLogger(__name__)

DS = DriverStatus
T = TypeVar("T")
OS = OfferStatus
# Wave sizes after the first: the second adds this many drivers, the third goes to everyone. A
# re-offer's first wave also adds this many per attempt (PRODUCT: "to a wider pool of drivers").
SECOND_WAVE_EXTRA = 3
LAST_WAVE = 3
TOO_FAR_MILES = 30.0
# A route is at risk when the driver could no longer reach the mall and keep every deadline.
REACH_MALL_MINUTES = 15


def pay_settings_for(market: Market | int) -> MarketPaySettings:
    market_id = market if isinstance(market, int) else market.pk
    found = MarketPaySettings.objects.filter(market_id=market_id).first()
    return found or MarketPaySettings(market_id=market_id)


def _record_driver_event(
    *,
    driver: Driver,
    type: str,
    acting_user: AbstractBaseUser | None = None,
    actor_label: str | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    data: Mapping | None = None,
    at: dt.datetime | None = None,
) -> DriverEvent:
    return DriverEvent.objects.create(
        driver=driver,
        type=type,
        from_status=from_status,
        to_status=to_status,
        actor=acting_user if acting_user is not None and acting_user.is_authenticated else None,
        actor_label=actor_label or actor_label_for(acting_user),
        at=at or timezone.now(),
        reason=reason,
        data=dict(data or {}),
    )


def _notify(*, driver: Driver, kind: str, context: Mapping, dedupe_key: str) -> None:
    """Tells a driver by email and SMS (where they have an address) through the one outbox, in
    the caller's transaction."""
    notify(
        recipients=[Recipient(user=driver.user, email=driver.user.email, phone=driver.phone)],
        channels=[Channel.EMAIL, Channel.SMS],
        kind=kind,
        context=context,
        dedupe_key=dedupe_key,
    )


def _notify_store_staff(*, route: Route, store_ids: Iterable[int], kind: str, driver: Driver) -> None:
    """Emails the active staff of each store on the route that the driver is coming (or is there)."""
    packages = dict(
        route.stops.filter(is_current=True, store_id__in=list(store_ids), status=StopStatus.PENDING)
        .values_list("store_id")
        # Planned units: the real count once packed, the estimate while the store still packs.
        .annotate(n=Sum("planned_packages"))
    )
    for store in Store.objects.filter(pk__in=list(packages)):
        staff = StoreMembership.objects.filter(store=store, is_active=True, user__is_active=True).select_related("user")
        notify(
            recipients=[Recipient(user=member.user, email=member.user.email) for member in staff],
            channels=[Channel.EMAIL],
            kind=kind,
            context={"driver": driver.name, "store": store.name, "route": route.pk, "packages": packages[store.pk]},
            dedupe_key=f"{kind}-route-{route.pk}-store-{store.pk}-driver-{driver.pk}",
        )


def _alert_operators(*, route: Route, alert: str) -> None:
    """Emails every operator (active superuser with an address) that a route needs them."""
    operators = get_user_model().objects.filter(is_active=True, is_staff=True, is_superuser=True).exclude(email="")
    notify(
        recipients=[Recipient(user=user, email=user.email) for user in operators],
        channels=[Channel.EMAIL],
        kind="route.at_risk",
        context={"route": route.pk, "mall": route.mall.name, "alert": alert},
        dedupe_key=f"route-at-risk-{route.pk}-{route.reoffers}",
    )


# --- the driver lifecycle ---------------------------------------------------------------------


def _driver_transition(
    *, driver: Driver, to: str, acting_user: AbstractBaseUser | None, reason: str = ""
) -> DriverEvent:
    expected = driver.status
    if expected not in sources_of(DRIVER_TRANSITIONS, to):
        raise ActionRefused(
            f"{driver} is {DriverStatus(expected).label.lower()}: they cannot be moved to "
            f"{DriverStatus(to).label.lower()}.",
            code="illegal-transition",
        )
    now = timezone.now()
    fields: dict[str, object] = {"status": to, "status_changed_at": now, "status_reason": reason}
    supply_markets = {driver.online_market_id} if driver.is_online and to != DS.ACTIVE else set()
    if DS.ACTIVE in (expected, to) and expected != to:
        # A shift under way counts only while its driver is active: it starts or stops counting.
        supply_markets |= set(
            DriverShift.objects.filter(driver=driver, starts_at__lte=now, ends_at__gt=now).values_list(
                "market_id", flat=True
            )
        )
    if to != DS.ACTIVE:
        fields |= {"is_online": False, "online_market": None, "availability_changed_at": now}
    if Driver.objects.filter(pk=driver.pk, status=expected).update(**fields) != 1:
        raise ActionRefused(f"{driver} was changed by someone else a moment ago.", code="conflict")
    if to != DS.ACTIVE:
        _pass_on_pending_offers(driver=driver, now=now)
    if supply_markets:
        eligibility_after_driver_supply_change(market_ids=sorted(supply_markets))
    for name, value in fields.items():
        setattr(driver, name, value)
    return _record_driver_event(
        driver=driver,
        type=f"driver.{to}",
        acting_user=acting_user,
        from_status=expected,
        to_status=to,
        reason=reason,
        at=now,
    )


@transaction.atomic
def driver_start_screening(*, driver: Driver, acting_user: AbstractBaseUser | None) -> Driver:
    """applicant → screening. Side effects: one `driver.screening` event."""
    _driver_transition(driver=driver, to=DS.SCREENING, acting_user=acting_user)
    return driver


@transaction.atomic
def driver_approve(*, driver: Driver, acting_user: AbstractBaseUser | None) -> Driver:
    """screening → active, or inactive → active (resume). Needs a vehicle and valid documents.

    Side effects: one `driver.active` event; a notification to the driver.
    """
    if not hasattr(driver, "vehicle"):
        raise ActionRefused(f"{driver} has no vehicle on file.", code="validation")
    valid = set(driver.documents.filter(valid_until__gt=timezone.now()).values_list("kind", flat=True))
    if not valid >= REQUIRED_DOCUMENTS:
        missing = ", ".join(sorted(REQUIRED_DOCUMENTS - valid))
        raise ActionRefused(f"{driver} has no valid {missing}.", code="documents-invalid")
    _driver_transition(driver=driver, to=DS.ACTIVE, acting_user=acting_user)
    _notify(
        driver=driver,
        kind="driver.active",
        context={},
        dedupe_key=f"driver-active-{driver.pk}-{driver.status_changed_at.isoformat()}",
    )
    return driver


def _lock_driver(driver: Driver) -> str:
    """Locks the driver's row to the commit and returns their status. Pause, deactivation and an
    accept take it before they look at the driver's routes, so no route slips in between one's
    check and another's change. NO KEY: rows that merely point at the driver (offer recipients,
    events) are not held up."""
    return Driver.objects.select_for_update(no_key=True).filter(pk=driver.pk).values_list("status", flat=True).get()


@transaction.atomic
def driver_pause(*, driver: Driver, acting_user: AbstractBaseUser | None, reason: str) -> Driver:
    """active → inactive, with a reason. Side effects: goes offline; one `driver.inactive` event."""
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Give a reason for pausing the driver.", code="validation")
    # A paused driver can no longer deliver, report a problem or give the route back (driver
    # pages write only for active drivers): the packages in their car would be stranded.
    _lock_driver(driver)
    if active_route_for_driver(driver=driver) is not None:
        raise ActionRefused(f"{driver} is on a route: pause them once it is finished.", code="busy")
    _driver_transition(driver=driver, to=DS.INACTIVE, acting_user=acting_user, reason=reason)
    return driver


@transaction.atomic
def driver_deactivate(*, driver: Driver, acting_user: AbstractBaseUser | None, reason: str) -> Driver:
    """→ deactivated, with a reason. Side effects: goes offline; one `driver.deactivated` event."""
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Give a reason for deactivating the driver.", code="validation")
    _lock_driver(driver)
    if active_route_for_driver(driver=driver) is not None:
        raise ActionRefused(f"{driver} is on a route: reassign it first.", code="busy")
    _driver_transition(driver=driver, to=DS.DEACTIVATED, acting_user=acting_user, reason=reason)
    return driver


# --- availability and documents ---------------------------------------------------------------


def invalid_documents(driver: Driver, *, now: dt.datetime) -> list[str]:
    """Human-readable problems with the driver's documents at `now` (empty when all good)."""
    documents = {document.kind: document for document in driver.documents.all()}
    problems = []
    for kind in sorted(REQUIRED_DOCUMENTS):
        document = documents.get(kind)
        if document is None:
            problems.append(f"no {kind} on file")
        elif not document.is_valid_at(now):
            problems.append(f"{document.get_kind_display().lower()} expired on {document.expires_on:%b %d, %Y}")
    return problems


# How far from a market's nearest mall a driver online there may be: a driver farther away
# cannot reach its malls in an offer's time, and counting them as its supply would show
# shoppers same-day that nobody can deliver (a phone that reported 0, 0; the wrong market).
MARKET_REACH_MILES = 60


def _refuse_a_position_outside(market: Market, *, latitude: Decimal, longitude: Decimal) -> None:
    here = routing.Point(float(latitude), float(longitude))
    distances = [
        (routing.haversine_miles(here, routing.Point(float(mall.latitude), float(mall.longitude))), mall.name)
        for mall in market.malls.all()
    ]
    if distances and min(distances)[0] > MARKET_REACH_MILES:
        miles, mall = min(distances)
        raise ActionRefused(
            f"Your location is {miles:,.0f} miles from {mall}, the nearest mall in {market.name}: choose the market "
            "you are in, or check your location.",
            code="out-of-market",
        )


@transaction.atomic
def driver_go_online(*, driver: Driver, market: Market, latitude: Decimal | None, longitude: Decimal | None) -> Driver:
    """The driver starts taking offers in `market`, at a position.

    Side effects: availability fields; one `driver.online` event.
    """
    if driver.status != DS.ACTIVE:
        raise ActionRefused(
            f"Your account is {DriverStatus(driver.status).label.lower()}: you cannot go online.", code="not-active"
        )
    problems = invalid_documents(driver, now=timezone.now())
    if problems:
        raise ActionRefused(
            f"You cannot go online: {'; '.join(problems)}. Send a valid one to Mallrun operations.", code="documents"
        )
    if latitude is not None and longitude is not None:
        _refuse_a_position_outside(market, latitude=latitude, longitude=longitude)
    now = timezone.now()
    changed = Driver.objects.filter(pk=driver.pk, status=DS.ACTIVE).update(
        is_online=True,
        online_market=market,
        latitude=latitude,
        longitude=longitude,
        location_updated_at=now,
        availability_changed_at=now,
    )
    if changed != 1:
        raise ActionRefused("Your account changed a moment ago: reload the page.", code="conflict")
    driver.is_online, driver.online_market, driver.latitude, driver.longitude = True, market, latitude, longitude
    driver.location_updated_at = driver.availability_changed_at = now
    eligibility_after_driver_supply_change(market_ids=[market.pk])
    _record_driver_event(
        driver=driver,
        type="driver.online",
        acting_user=driver.user,
        data={"market": market.slug, "lat": str(latitude), "lon": str(longitude)},
        at=now,
    )
    return driver


@transaction.atomic
def driver_go_offline(*, driver: Driver, acting_user: AbstractBaseUser | None, reason: str = "") -> Driver:
    """Stops offers to the driver. Side effects: availability fields; one `driver.offline` event;
    offers still waiting for their answer are passed on (_pass_on_pending_offers)."""
    now = timezone.now()
    was_online_in = Driver.objects.filter(pk=driver.pk).values_list("online_market_id", flat=True).first()
    if Driver.objects.filter(pk=driver.pk, is_online=True).update(
        is_online=False, online_market=None, availability_changed_at=now
    ):
        _record_driver_event(driver=driver, type="driver.offline", acting_user=acting_user, reason=reason, at=now)
        if was_online_in is not None:
            eligibility_after_driver_supply_change(market_ids=[was_online_in])
        _pass_on_pending_offers(driver=driver, now=now)
    driver.is_online, driver.online_market, driver.availability_changed_at = False, None, now
    return driver


# --- scheduled shifts --------------------------------------------------------------------------

SHIFT_LONGEST = dt.timedelta(hours=12)
SHIFT_FURTHEST_AHEAD = dt.timedelta(days=14)


def _supply_changed_by(shift: DriverShift, *, now: dt.datetime) -> None:
    # A shift under way counts as supply now; one starting or ending later is caught by the
    # eligibility sweep (retailers.eligibility_sql.malls_with_driver_supply_drift) when it does.
    if shift.covers(now):
        eligibility_after_driver_supply_change(market_ids=[shift.market_id])


@transaction.atomic
def driver_shift_schedule(
    *, driver: Driver, starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime
) -> DriverShift:
    """Schedules a shift of the driver in their home market, from `starts_at` to `ends_at`.

    Side effects: one DriverShift row; one `driver.shift_scheduled` event; when the shift covers
    `now`, the recompute of eligibility in the market's malls (as going online does).
    """
    # The driver's row, locked: two schedules of the same driver cannot both pass the overlap check.
    locked = Driver.objects.select_for_update().select_related("home_market").get(pk=driver.pk)
    if locked.status != DS.ACTIVE:
        raise ActionRefused(
            f"Your account is {DriverStatus(locked.status).label.lower()}: you cannot schedule shifts.",
            code="not-active",
        )
    if ends_at <= starts_at:
        raise ActionRefused("The shift must end after it starts.", code="validation")
    if ends_at - starts_at > SHIFT_LONGEST:
        raise ActionRefused("A shift can last at most 12 hours.", code="validation")
    if ends_at <= now:
        raise ActionRefused("That shift has already ended: pick a time to come.", code="validation")
    if starts_at > now + SHIFT_FURTHEST_AHEAD:
        raise ActionRefused("Shifts can be scheduled at most 14 days ahead.", code="validation")
    overlapping = (
        DriverShift.objects.filter(driver=locked, starts_at__lt=ends_at, ends_at__gt=starts_at)
        .select_related("market")
        .first()
    )
    if overlapping is not None:
        raise ActionRefused(f"That overlaps your shift {overlapping.local_label()}.", code="overlap")
    shift = DriverShift.objects.create(
        driver=locked, market=locked.home_market, starts_at=starts_at, ends_at=ends_at, created_at=now
    )
    _record_driver_event(
        driver=locked,
        type="driver.shift_scheduled",
        acting_user=locked.user,
        data={"shift": shift.pk, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
        at=now,
    )
    _supply_changed_by(shift, now=now)
    return shift


@transaction.atomic
def driver_shift_cancel(*, driver: Driver, shift: DriverShift, now: dt.datetime) -> DriverShift | None:
    """Cancels one of the driver's shifts that has not ended. A shift not yet started is deleted
    (returns None); a shift under way ends `now` (returns it), so its past stays on record.

    Side effects: the shift deleted or shortened; one `driver.shift_cancelled` event; when it
    covered `now`, the recompute of eligibility in the market's malls (as going offline does).
    """
    locked = DriverShift.objects.select_for_update().filter(pk=shift.pk).select_related("market").first()
    if locked is None or locked.driver_id != driver.pk:
        raise ActionRefused("That is not one of your shifts.", code="not-found")
    if locked.ends_at <= now:
        raise ActionRefused("That shift has already ended.", code="ended")
    was_covering = locked.covers(now)
    data = {"shift": locked.pk, "starts_at": locked.starts_at.isoformat(), "ends_at": locked.ends_at.isoformat()}
    if locked.starts_at < now:
        locked.ends_at = now
        locked.save(update_fields=["ends_at"])
        kept: DriverShift | None = locked
    else:
        locked.delete()
        kept = None
    _record_driver_event(driver=driver, type="driver.shift_cancelled", acting_user=driver.user, data=data, at=now)
    if was_covering:
        eligibility_after_driver_supply_change(market_ids=[locked.market_id])
    return kept


def documents_sweep(*, now: dt.datetime) -> int:
    """Takes drivers with an expired document off offers and tells them, once per document.

    Side effects: per newly expired document: goes offline, one `driver.document_expired` event,
    one notification. Returns how many documents were handled.
    """
    handled = 0
    expired = Driver.objects.filter(documents__valid_until__lte=now, documents__expiry_notified_at__isnull=True)
    for driver_id in expired.values_list("pk", flat=True).distinct():
        with transaction.atomic():
            driver = Driver.objects.select_for_update(skip_locked=True).filter(pk=driver_id).first()
            if driver is None:
                continue
            for document in driver.documents.filter(valid_until__lte=now, expiry_notified_at__isnull=True):
                label = document.get_kind_display().lower()
                driver_go_offline(driver=driver, acting_user=None, reason=f"{label} expired")
                _record_driver_event(
                    driver=driver,
                    type="driver.document_expired",
                    actor_label="system",
                    reason=f"{label} expired on {document.expires_on:%b %d, %Y}",
                    data={"document": document.pk},
                    at=now,
                )
                _notify(
                    driver=driver,
                    kind="driver.document_expired",
                    context={"document": label, "expires_on": document.expires_on},
                    dedupe_key=f"doc-expired-{document.pk}-{document.expires_on.isoformat()}",
                )
                document.expiry_notified_at = now
                document.save(update_fields=["expiry_notified_at"])
                handled += 1
    return handled


# How long before a document's end the driver is reminded to renew it.
DOCUMENT_REMINDER = dt.timedelta(days=7)


def documents_remind(*, now: dt.datetime) -> int:
    """Reminds each active driver, once per document and expiry date, that a document runs out
    within DOCUMENT_REMINDER. Side effects: one notification per document (email and SMS) and
    its `expiry_reminded_at`. Returns how many documents were reminded of."""
    due = DriverDocument.objects.filter(
        valid_until__gt=now,
        valid_until__lte=now + DOCUMENT_REMINDER,
        expiry_reminded_at__isnull=True,
        driver__status=DS.ACTIVE,
    ).select_related("driver__user")
    reminded = 0
    for document in due:
        with transaction.atomic():
            # Once, whoever else sweeps: only the sweep that marks the row sends.
            marked = DriverDocument.objects.filter(pk=document.pk, expiry_reminded_at__isnull=True).update(
                expiry_reminded_at=now
            )
            if not marked:
                continue
            _notify(
                driver=document.driver,
                kind="driver.document_expiring",
                context={"document": document.get_kind_display().lower(), "expires_on": document.expires_on},
                dedupe_key=f"doc-expiring-{document.pk}-{document.expires_on.isoformat()}",
            )
            reminded += 1
    return reminded


def documents_refresh_valid_until(*, driver_ids: Iterable[int] = (), market_ids: Iterable[int] = ()) -> int:
    """Gives the documents of these drivers, and of the drivers based in these markets, the end
    of their expiry date in their home market's zone now (after the driver moved market or the
    market's zone changed). Side effects: none beyond the documents. Returns how many changed."""
    documents = DriverDocument.objects.filter(
        Q(driver_id__in=list(driver_ids)) | Q(driver__home_market_id__in=list(market_ids))
    ).select_related("driver__home_market")
    changed = []
    for document in documents:
        valid_until = document.valid_until_for(document.driver.home_market)
        if valid_until != document.valid_until:
            document.valid_until = valid_until
            changed.append(document)
    DriverDocument.objects.bulk_update(changed, ["valid_until"])
    return len(changed)


# --- routes -------------------------------------------------------------------------------------


def _point(lat, lon) -> routing.Point | None:
    if lat is None or lon is None:
        return None
    return routing.Point(float(lat), float(lon))


def _route_quote(route: Route, *, stops: int, attempt: int) -> pay_rules.Quote:
    rules = pay_settings_for(route.mall.market_id).rules
    return pay_rules.quote(
        rules=rules,
        stops=stops,
        miles=float(route.estimated_miles),
        minutes=route.estimated_minutes,
        reoffers=attempt,
    )


# Orders still being packed that may join a route: accepted or picking, ready (by the store's
# preparation SLA) before the nearest free driver could reach the mall.
PACKING_STATUSES = (OrderStatus.ACCEPTED, OrderStatus.PICKING)
# No free driver is ever further than this from the mall (30 mi at rush-hour speed): orders due
# later are not worth looking at yet.
PACKING_LOOKAHEAD = dt.timedelta(minutes=150)
# Orders that leave a route before pickup: the route is re-planned without them.
DROPPED_STATUSES = (OrderStatus.CANCELLED, OrderStatus.REJECTED)
# Routes whose plan may still change: nothing picked up yet.
NOT_PICKED_UP = (RouteStatus.OFFERING, RouteStatus.ASSIGNED)


def _mall_settings(mall: Mall, *, capacity_units: int | None = None) -> routing.MallSettings:
    market_settings = pay_settings_for(mall.market_id)
    return routing.MallSettings(
        location=routing.Point(float(mall.latitude), float(mall.longitude)),
        radius_miles=float(mall.delivery_radius_miles),
        capacity_units=capacity_units or market_settings.route_capacity_units,
        max_stops=market_settings.max_stops,
    )


def _travel(mall: Mall) -> routing.HaversineTravelTimes:
    return routing.HaversineTravelTimes(circuity=float(pay_settings_for(mall.market_id).circuity_factor))


def _free_driver_positions(*, market_id: int, now: dt.datetime) -> list[routing.Point]:
    """Where the drivers who could take a route right now are: online in the market, documents
    valid, with a position, not busy on a route."""
    rows = (
        drivers_free_in_market(market_id=market_id, now=now)
        .filter(latitude__isnull=False, longitude__isnull=False)
        .values_list("latitude", "longitude")
    )
    return [routing.Point(float(lat), float(lon)) for lat, lon in rows]


def order_estimated_packages(order: Order) -> int:
    """Package units of an order not packed yet, from its lines' size classes (see
    `routing.estimate_packages`)."""
    return routing.estimate_packages([(line.listing.size_class, line.quantity) for line in order.lines.all()])


def _unrouted_orders(mall: Mall) -> QuerySet[Order]:
    # Training orders (a store's onboarding test order) never go to a driver.
    return Order.objects.filter(store__mall=mall, is_training=False).exclude(route_stops__is_current=True)


def routes_build_for_mall(*, mall: Mall, now: dt.datetime, time_limit_s: float | None = None) -> list[Route]:
    """Groups the mall's orders that are on no current route into routes and offers each: the
    ready ones, and the accepted or picking ones whose preparation SLA ends before the nearest
    free driver could reach the mall (sized from their lines until packed). Orders no route can
    carry get a one-stop route flagged for an operator (ready orders only: one still being
    packed waits until it is ready).

    The solver runs outside any transaction; each route is then written in its own short
    transaction that first locks its orders with SELECT … FOR UPDATE SKIP LOCKED and checks they
    are still unrouted and unchanged. So a worker killed mid-build leaves whole routes behind and
    a re-run (at-least-once delivery) routes only the rest, and two builders at once never route
    an order twice: the second skips what the first holds or already committed.

    Side effects: Route and RouteStop rows; an open Offer per route (see `offer_open`); an
    operator alert per unroutable ready order."""
    unrouted = _unrouted_orders(mall)
    orders = list(
        unrouted.filter(status=OrderStatus.READY).select_related("store").annotate(package_count=Count("packages"))
    )
    estimates: dict[int, int] = {}
    travel = _travel(mall)
    mall_settings = _mall_settings(mall)
    soon = unrouted.filter(status__in=PACKING_STATUSES, prep_due_at__lte=now + PACKING_LOOKAHEAD)
    if soon.exists():
        arrival = routing.earliest_arrival(
            mall=mall_settings.location,
            drivers=_free_driver_positions(market_id=mall.market_id, now=now),
            now=now,
            travel=travel,
            local=now.astimezone(mall.tz),
        )
        if arrival is not None:
            packing = list(
                soon.filter(prep_due_at__lte=arrival).select_related("store").prefetch_related("lines__listing")
            )
            for order in packing:
                estimates[order.pk] = order_estimated_packages(order)
            orders += packing
    if not orders:
        return []
    orders.sort(key=lambda order: (order.deliver_by, order.pk))
    deliveries = []
    no_address = []
    for order in orders:
        drop = _point(order.latitude, order.longitude)
        if drop is None:
            no_address.append(order)
            continue
        deliveries.append(
            routing.Delivery(
                key=order.pk,
                store_key=order.store_id,
                drop=drop,
                deliver_by=order.deliver_by,
                packages=estimates.get(order.pk) or max(1, order.package_count),
                ready_at=max(now, order.prep_due_at) if order.pk in estimates else now,
            )
        )
    plan = routing.plan_mall_routes(
        mall=mall_settings,
        deliveries=deliveries,
        now=now,
        travel=travel,
        # A handful of orders needs a fraction of a second; 200 get the full second.
        time_limit_s=time_limit_s if time_limit_s is not None else min(1.0, 0.1 + 0.0045 * len(deliveries)),
        local_time=lambda at: at.astimezone(mall.tz),
    )
    by_id = {order.pk: order for order in orders}
    routes = []
    for planned in plan.routes:
        route = _route_create(mall=mall, planned=planned, orders=by_id, estimates=estimates, now=now)
        if route is not None:
            routes.append(route)
    problems = {key: reason for key, reason in plan.left_out.items() if reason != "unassigned" and key not in estimates}
    problems |= {order.pk: "no_location" for order in no_address if order.pk not in estimates}
    reasons = {
        "outside_radius": "the address is outside the mall's delivery radius",
        "too_big": "it has more packages than a route may hold",
        "deadline_unreachable": "no driver can reach the address before its deadline",
        "no_location": "the address has no map position",
    }
    for order_id, reason in problems.items():
        route = _route_create_at_risk(
            mall=mall,
            order=by_id[order_id],
            alert=f"Order {by_id[order_id].number} cannot be routed: {reasons[reason]}.",
            now=now,
        )
        if route is not None:
            routes.append(route)
    return routes


def _lock_unrouted(orders: Iterable[Order]) -> bool:
    """Inside the caller's transaction: locks `orders` (skipping rows another transaction holds)
    and says whether every one is locked, still in the status the plan saw and on no current
    route."""
    expected = {order.pk: order.status for order in orders}
    locked = dict(
        Order.objects.select_for_update(skip_locked=True).filter(pk__in=list(expected)).values_list("pk", "status")
    )
    if locked != expected:
        return False
    return not RouteStop.objects.filter(order_id__in=list(expected), is_current=True).exists()


def _route_create(
    *,
    mall: Mall,
    planned: routing.PlannedRoute,
    orders: Mapping[int, Order],
    estimates: Mapping[int, int],
    now: dt.datetime,
) -> Route | None:
    """Writes one planned route and offers it, in one transaction; None when one of its orders
    was taken or changed since the plan (it is planned again on the next build)."""
    members = [orders[stop.key] for stop in planned.stops]
    with transaction.atomic():
        if not _lock_unrouted(members):
            return None
        route = Route.objects.create(
            mall=mall,
            packages=planned.packages,
            estimated_miles=Decimal(str(round(planned.miles, 2))),
            estimated_minutes=max(1, round(planned.minutes)),
            depart_at=planned.depart_at,
            created_at=now,
            updated_at=now,
        )
        RouteStop.objects.bulk_create(
            RouteStop(
                route=route,
                order_id=stop.key,
                store_id=orders[stop.key].store_id,
                sequence=sequence,
                eta=stop.arrive_at,
                miles_from_previous=Decimal(str(round(stop.miles_from_previous, 2))),
                planned_packages=estimates.get(stop.key) or max(1, orders[stop.key].package_count),
                ready_expected_at=orders[stop.key].prep_due_at if stop.key in estimates else None,
            )
            for sequence, stop in enumerate(planned.stops, start=1)
        )
        offer_open(route=route, now=now)
        return route


def _route_create_at_risk(*, mall: Mall, order: Order, alert: str, now: dt.datetime) -> Route | None:
    """A one-stop route no driver is offered, flagged for an operator (who is emailed)."""
    with transaction.atomic():
        if not _lock_unrouted([order]):
            return None
        packages = max(1, order.package_count)
        route = Route.objects.create(
            mall=mall,
            status=RouteStatus.AT_RISK,
            packages=packages,
            estimated_miles=Decimal("0"),
            estimated_minutes=1,
            depart_at=now,
            alert=alert,
            created_at=now,
            updated_at=now,
        )
        _alert_operators(route=route, alert=route.alert)
        RouteStop.objects.create(
            route=route, order=order, store_id=order.store_id, sequence=1, eta=now, planned_packages=packages
        )
        # The marketplace hears it too: an `order.delayed` event in the feed and its webhooks.
        order_delivery.orders_flag_delayed(order_ids=[order.pk], reason=alert, now=now)
        return route


# --- re-plans: an order leaves a route, a packed order's size differs from its estimate ----------


def _lock_route_for_change(route_id: int) -> Route | None:
    """Inside the caller's transaction: locks the route, its live offers and its current stops,
    never waiting (SKIP LOCKED). None when any of them is busy in another transaction (a
    handoff, an accept, a delivery): the sweeper tries again on its next round. Never waiting
    is what keeps this route-first lock order from deadlocking with the offer-first services."""
    route = Route.objects.select_for_update(skip_locked=True).select_related("mall").filter(pk=route_id).first()
    if route is None:
        return None
    for model, live in (
        (Offer, Q(route_id=route_id, status__in=[OS.OPEN, OS.ACCEPTED])),
        (RouteStop, Q(route_id=route_id, is_current=True)),
    ):
        wanted = set(model.objects.filter(live).values_list("pk", flat=True))
        got = set(model.objects.select_for_update(skip_locked=True).filter(live).values_list("pk", flat=True))
        if got != wanted:
            return None
    return route


def _stop_delivery(stop: RouteStop, *, mall_point: routing.Point, now: dt.datetime) -> routing.Delivery:
    order = stop.order
    return routing.Delivery(
        key=order.pk,
        store_key=stop.store_id,
        # An address without a map position only rides on an operator's one-stop route.
        drop=_point(order.latitude, order.longitude) or mall_point,
        deliver_by=order.deliver_by,
        packages=stop.planned_packages,
        ready_at=max(now, order.prep_due_at) if order.status in PACKING_STATUSES else now,
    )


def _route_capacity(route: Route) -> int:
    """What the route may hold: the accepted driver's vehicle, else a typical car of the market."""
    if route.driver_id is not None:
        vehicle = getattr(Driver.objects.select_related("vehicle").get(pk=route.driver_id), "vehicle", None)
        if vehicle is not None:
            return vehicle.capacity_units
    return pay_settings_for(route.mall.market_id).route_capacity_units


def _route_cancel_empty(*, route: Route, now: dt.datetime, why: str) -> None:
    """A route left with no order: cancelled; its open offer withdrawn, or its driver told."""
    Route.objects.filter(pk=route.pk).update(status=RouteStatus.CANCELLED, updated_at=now)
    route.status = RouteStatus.CANCELLED
    for offer in Offer.objects.filter(route=route, status__in=[OS.OPEN, OS.ACCEPTED]).select_related("driver__user"):
        if offer.status == OS.OPEN:
            _offer_close(offer=offer, to=OS.WITHDRAWN, now=now, reason=why)
            OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).update(
                answer=Answer.TIMED_OUT, answered_at=now
            )
        else:
            # The driver held it and nothing was picked up: the trip is off.
            _offer_close(offer=offer, to=OS.FORFEITED, now=now, reason=why)
            _notify(
                driver=offer.driver,
                kind="route.cancelled",
                context={"mall": route.mall.name},
                dedupe_key=f"route-cancelled-{route.pk}",
            )


def _route_replan(
    *, route: Route, now: dt.datetime, why: str, keep_pay: bool = True, tell_driver: bool = True
) -> list[RouteStop]:
    """Re-plans a route (locked by the caller) after its orders changed: the drops keep their
    order; stops that no longer fit the vehicle (the packages that grew last leave first) move
    off it for the next build; ETAs, miles, minutes, packages and pay are computed again.
    Pay never drops below what the live offer showed (`keep_pay`; see ADR 0005) unless the
    driver gave the work back themselves. A route left empty is cancelled.

    Side effects: RouteStop (eta, miles; moved ones not current); Route; the live Offer's pay;
    a `route.replanned` notification to the accepted driver. Returns the stops moved off."""
    stops = list(route.stops.filter(is_current=True).select_related("order").order_by("sequence"))
    moved: list[RouteStop] = []
    if route.status in NOT_PICKED_UP:
        capacity = _route_capacity(route)
        # Leave first: the stops whose order was packed most recently (their size just changed).
        by_change = sorted(stops, key=lambda stop: (stop.order.status_changed_at, stop.sequence), reverse=True)
        while stops and sum(stop.planned_packages for stop in stops) > capacity:
            leaving = next(stop for stop in by_change if stop in stops and stop.status == StopStatus.PENDING)
            stops.remove(leaving)
            moved.append(leaving)
        if moved:
            RouteStop.objects.filter(pk__in=[stop.pk for stop in moved]).update(
                status=StopStatus.MOVED, is_current=False
            )
    if not stops:
        _route_cancel_empty(route=route, now=now, why=why)
        return moved
    mall = route.mall
    mall_settings = _mall_settings(mall)
    deliveries = [_stop_delivery(stop, mall_point=mall_settings.location, now=now) for stop in stops]
    if route.status in NOT_PICKED_UP:
        store_count = len({stop.store_id for stop in stops})
        depart = max(
            [now + dt.timedelta(minutes=mall_settings.pickup_minutes), *(d.ready_at for d in deliveries)]
        ) + dt.timedelta(minutes=mall_settings.per_store_minutes * (store_count - 1))
    else:
        depart = route.depart_at
    planned = routing.estimate_sequence(
        mall=mall_settings,
        deliveries=deliveries,
        depart_at=depart,
        now=now,
        travel=_travel(mall),
        local_time=lambda at: at.astimezone(mall.tz),
    )
    for stop, estimate in zip(stops, planned.stops, strict=True):
        RouteStop.objects.filter(pk=stop.pk).update(
            eta=estimate.arrive_at, miles_from_previous=Decimal(str(round(estimate.miles_from_previous, 2)))
        )
    Route.objects.filter(pk=route.pk).update(
        packages=max(1, planned.packages),
        estimated_miles=Decimal(str(round(planned.miles, 2))),
        estimated_minutes=max(1, round(planned.minutes)),
        depart_at=depart,
        replans=F("replans") + 1,
        replan_reason=why[:300],
        updated_at=now,
    )
    route.refresh_from_db()
    offer = Offer.objects.filter(route=route, status__in=[OS.OPEN, OS.ACCEPTED]).select_related("driver__user").first()
    if offer is not None:
        quote = _route_quote(route, stops=len(stops), attempt=offer.attempt)
        pay = quote.total_cents + route.wait_pay_cents
        if keep_pay:
            pay = max(pay, offer.pay_cents)
        Offer.objects.filter(pk=offer.pk).update(pay_cents=pay)
        offer.pay_cents = pay
        if offer.status == OS.ACCEPTED and tell_driver:
            _notify(
                driver=offer.driver,
                kind="route.replanned",
                context={
                    "mall": mall.name,
                    "why": why,
                    "stops": len(stops),
                    "packages": route.packages,
                    "miles": route.estimated_miles,
                    "minutes": route.estimated_minutes,
                    "pay": f"{pay / 100:.2f}",
                },
                dedupe_key=f"route-replanned-{route.pk}-{route.replans}",
            )
    return moved


def _numbers(order_ids: Iterable[int]) -> str:
    return ", ".join(
        Order.objects.filter(pk__in=list(order_ids)).order_by("pk").values_list("marketplace_order_id", flat=True)
    )


def routes_drop_cancelled_orders(*, now: dt.datetime) -> int:
    """Takes orders cancelled or rejected before pickup off their routes and re-plans each route
    (see `_route_replan`); a route left with no order is cancelled: its open offer is withdrawn,
    or its driver is told. A route busy in another transaction is left for the next round.

    Side effects: RouteStop (cancelled, not current); Route and its live Offer re-planned or
    cancelled; a notification to the accepted driver. Returns how many stops were dropped."""
    dropped = 0
    route_ids = (
        RouteStop.objects.filter(is_current=True, status=StopStatus.PENDING, order__status__in=DROPPED_STATUSES)
        .values_list("route_id", flat=True)
        .distinct()
    )
    for route_id in list(route_ids):
        with transaction.atomic():
            route = _lock_route_for_change(route_id)
            if route is None:
                continue
            gone = list(
                RouteStop.objects.filter(
                    route=route, is_current=True, status=StopStatus.PENDING, order__status__in=DROPPED_STATUSES
                ).values_list("pk", "order_id")
            )
            if not gone:
                continue
            RouteStop.objects.filter(pk__in=[pk for pk, _ in gone]).update(
                status=StopStatus.CANCELLED, is_current=False
            )
            dropped += len(gone)
            why = f"order {_numbers(order_id for _, order_id in gone)} was cancelled"
            if not route.stops.filter(is_current=True).exists():
                _route_cancel_empty(route=route, now=now, why="every order was cancelled")
                continue
            _route_replan(route=route, now=now, why=why)
    return dropped


def routes_replan_packed_orders(*, now: dt.datetime) -> int:
    """Orders routed while still being packed and now ready with a package count other than
    the estimate: the stop takes the real count and, while nothing on the route was picked up,
    the route is re-planned (stops that no longer fit move off it for the next build; fewer
    packages free room, so smaller cars qualify). A route busy in another transaction is left
    for the next round.

    Side effects: RouteStop.planned_packages; Route re-planned (see `_route_replan`). Returns
    how many stops changed."""
    changed = 0
    stale = (
        RouteStop.objects.filter(is_current=True, status=StopStatus.PENDING, order__status=OrderStatus.READY)
        .annotate(real=Count("order__packages"))
        .exclude(real=F("planned_packages"))
    )
    for route_id in list(stale.values_list("route_id", flat=True).distinct()):
        with transaction.atomic():
            route = _lock_route_for_change(route_id)
            if route is None:
                continue
            rows = list(
                stale.filter(route=route).values_list("pk", "real", "planned_packages", "order__marketplace_order_id")
            )
            for pk, real, _planned, _number in rows:
                RouteStop.objects.filter(pk=pk).update(planned_packages=max(1, real))
            changed += len(rows)
            if not rows:
                continue
            if route.status in NOT_PICKED_UP:
                why = "; ".join(
                    f"order {number} was packed into {real} package{'s' if real != 1 else ''}, not {planned}"
                    for _pk, real, planned, number in rows
                )
                _route_replan(route=route, now=now, why=why)
            else:
                # Under way or with an operator: the count is corrected, the plan stays.
                Route.objects.filter(pk=route.pk).update(
                    packages=Coalesce(
                        Subquery(
                            RouteStop.objects.filter(route_id=route.pk, is_current=True)
                            .values("route_id")
                            .annotate(total=Sum("planned_packages"))
                            .values("total")
                        ),
                        F("packages"),
                    ),
                    updated_at=now,
                )
    return changed


def _latest_departure(route: Route) -> dt.datetime:
    """The latest time the route can leave the mall and still keep every deadline."""
    slack = min(
        (stop.order.deliver_by - stop.eta for stop in route.stops.select_related("order").filter(is_current=True)),
        default=dt.timedelta(0),
    )
    return route.depart_at + slack


# --- dispatch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    driver: Driver
    eligible: bool
    reason: str
    distance_miles: float | None
    score: float


def _acceptance_rates(driver_ids: Iterable[int], *, now: dt.datetime) -> dict[int, float]:
    since = now - dt.timedelta(days=30)
    rows = (
        OfferRecipient.objects.filter(driver_id__in=list(driver_ids), offered_at__gte=since)
        .values("driver_id")
        .annotate(offered=Count("pk"), accepted=Count("pk", filter=Q(answer=Answer.ACCEPTED)))
    )
    return {row["driver_id"]: row["accepted"] / row["offered"] for row in rows if row["offered"]}


def rank_candidates(*, route: Route, now: dt.datetime, exclude: Mapping[int, str] | None = None) -> list[Candidate]:
    """Every driver online in the route's market, eligible ones first by rank. Eligible: active,
    documents valid, vehicle big enough, not busy on another route. Rank: distance to the mall,
    less up to 2 miles for a good acceptance rate over 30 days."""
    exclude = exclude or {}
    mall_point = routing.Point(float(route.mall.latitude), float(route.mall.longitude))
    online = list(
        Driver.objects.filter(is_online=True, online_market_id=route.mall.market_id)
        .select_related("vehicle", "user")
        .prefetch_related("documents")
    )
    busy = set(
        Route.objects.filter(
            driver_id__in=[driver.pk for driver in online], status__in=[RouteStatus.ASSIGNED, RouteStatus.UNDER_WAY]
        ).values_list("driver_id", flat=True)
    )
    rates = _acceptance_rates((driver.pk for driver in online), now=now)
    candidates = []
    for driver in online:
        position = _point(driver.latitude, driver.longitude)
        distance = routing.haversine_miles(position, mall_point) if position else None
        reason = ""
        if driver.pk in exclude:
            reason = exclude[driver.pk]
        elif driver.status != DS.ACTIVE:
            reason = f"account {DriverStatus(driver.status).label.lower()}"
        elif problems := invalid_documents(driver, now=now):
            reason = "documents: " + "; ".join(problems)
        elif not hasattr(driver, "vehicle"):
            reason = "no vehicle on file"
        elif driver.vehicle.capacity_units < route.packages:
            reason = f"vehicle holds {driver.vehicle.capacity_units} packages; the route has {route.packages}"
        elif driver.pk in busy:
            reason = "busy on another route"
        elif distance is not None and distance > TOO_FAR_MILES:
            reason = f"too far: {distance:.1f} mi from the mall"
        score = (distance if distance is not None else TOO_FAR_MILES) - 2 * rates.get(driver.pk, 0.5)
        candidates.append(Candidate(driver, not reason, reason, distance, score))
    candidates.sort(key=lambda candidate: (not candidate.eligible, candidate.score, candidate.driver.pk))
    return candidates


def _wave_size(wave: int, *, first_wave: int) -> int | None:
    """How many eligible drivers (counted from the top) an offer reaches by `wave`; None = all."""
    if wave <= 1:
        return first_wave
    if wave == 2:
        return first_wave + SECOND_WAVE_EXTRA
    return None


def _offer_wave(*, offer: Offer, now: dt.datetime) -> int:
    """Opens the next wave: ranks every online driver again, offers the route to the eligible
    ones within the wave's reach, and writes the reason for everyone else. Returns how many
    drivers were newly offered."""
    route = offer.route
    market_settings = pay_settings_for(route.mall.market_id)
    wave = offer.wave + 1
    existing = {row.driver_id: row for row in offer.recipients.all()}
    # Left out: whoever gave this route back, and whoever an operator took it from (route_assign
    # forfeits their offer too, but they did not give it back).
    taken_from = set(
        DriverEvent.objects.filter(type="driver.route_assigned", data__route=route.pk).values_list(
            "data__from_driver", flat=True
        )
    )
    forfeited = Offer.objects.filter(route=route, status=OS.FORFEITED).values_list("driver_id", flat=True)
    taken = "an operator gave this route to another driver"
    exclude = {driver_id: taken if driver_id in taken_from else "gave this route back" for driver_id in forfeited}
    if route.split_from_id is not None:
        parent_driver = Route.objects.filter(pk=route.split_from_id).values_list("driver_id", flat=True).first()
        if parent_driver is not None:
            exclude[parent_driver] = "gave this route back"
    # A re-offer (after an expiry or a forfeit) starts wider, by a second wave's extra drivers
    # for each attempt: the drivers nearest the mall did not take it last time.
    first_wave = market_settings.first_wave_size + SECOND_WAVE_EXTRA * offer.attempt
    reach = _wave_size(wave, first_wave=first_wave)
    candidates = rank_candidates(route=route, now=now, exclude=exclude)
    eligible = [candidate for candidate in candidates if candidate.eligible]
    within = eligible if reach is None else eligible[:reach]
    within_ids = {candidate.driver.pk for candidate in within}
    offered = 0
    stops = route.stops.filter(is_current=True).count()
    window = dt.timedelta(seconds=market_settings.offer_window_seconds)
    # The message says until when it can be answered (in the mall's time, naming its zone: the
    # driver may live in another) and where.
    summary = _route_summary(route, pay_cents=offer.pay_cents, stops=stops) | {
        "answer_by": in_zone(now + window, route.mall.tz, "g:i A T"),
        "link": f"{settings.PORTAL_BASE_URL}{reverse('driver:home')}",
    }
    # One INSERT for the new rows and one UPDATE for the changed ones: a wave considers every
    # online driver in the market, and a 200-order build opens a wave per route.
    new_rows: list[OfferRecipient] = []
    changed_rows: list[OfferRecipient] = []
    for rank, candidate in enumerate(candidates, start=1):
        row = existing.get(candidate.driver.pk)
        distance = Decimal(f"{candidate.distance_miles:.2f}") if candidate.distance_miles is not None else None
        if row is not None and row.offered_at is not None:
            continue
        if candidate.driver.pk in within_ids:
            fields = {
                "rank": rank,
                "distance_miles": distance,
                "wave": wave,
                "offered_at": now,
                "answer": Answer.PENDING,
                "not_offered_reason": "",
            }
            offered += 1
            _notify(
                driver=candidate.driver,
                kind="offer",
                context=summary,
                dedupe_key=f"offer-{offer.pk}-driver-{candidate.driver.pk}",
            )
        elif candidate.eligible:
            fields = {
                "rank": rank,
                "distance_miles": distance,
                "not_offered_reason": f"ranked {rank}: wave {wave} reached the top {reach}",
            }
        else:
            fields = {"rank": None, "distance_miles": distance, "not_offered_reason": candidate.reason}
        if row is None:
            new_rows.append(OfferRecipient(offer=offer, driver=candidate.driver, **fields))
        else:
            for name, value in fields.items():
                setattr(row, name, value)
            changed_rows.append(row)
    OfferRecipient.objects.bulk_create(new_rows)
    # Rows offered in an earlier wave were skipped above; the rest still hold their defaults
    # for the fields a not-offered row does not set, so writing all six is exact.
    OfferRecipient.objects.bulk_update(
        changed_rows, fields=["rank", "distance_miles", "wave", "offered_at", "answer", "not_offered_reason"]
    )
    Offer.objects.filter(pk=offer.pk).update(wave=wave, due_at=now + window)
    offer.wave, offer.due_at = wave, now + window
    return offered


def offer_open(*, route: Route, now: dt.datetime) -> Offer:
    """Offers a route: a new open Offer at the route's pay (with the re-offer bump) and its first
    wave. Side effects: Offer, OfferRecipient rows, offer notifications (outbox)."""
    stops = route.stops.filter(is_current=True).count()
    quote = _route_quote(route, stops=stops, attempt=route.reoffers)
    offer = Offer.objects.create(
        route=route,
        attempt=route.reoffers,
        pay_cents=quote.total_cents + route.wait_pay_cents,
        bump_cents=quote.bump_cents,
        opened_at=now,
        due_at=now,
    )
    _offer_wave(offer=offer, now=now)
    return offer


def _offer_close(*, offer: Offer, to: str, now: dt.datetime, reason: str = "", **fields: object) -> bool:
    if offer.status not in sources_of(OFFER_TRANSITIONS, to):
        raise ActionRefused(
            f"This offer is {OfferStatus(offer.status).label.lower()}: "
            f"it cannot become {OfferStatus(to).label.lower()}.",
            code="illegal-transition",
        )
    changed = Offer.objects.filter(pk=offer.pk, status=offer.status).update(
        status=to, closed_at=now, close_reason=reason, **fields
    )
    if changed == 1:
        offer.status = to
        offer.closed_at = now
    return changed == 1


def _route_retime(*, route: Route, now: dt.datetime) -> None:
    """A route taken later than it was planned for (a re-offer, an answer near the window's end,
    an operator's hand-over) leaves the mall when its new driver can be there: the departure and
    every current stop's ETA move by the same amount, so the driver's page never says to leave
    at a time already past. Orders whose deadline that puts at risk are flagged delayed."""
    earliest = now + dt.timedelta(minutes=_mall_settings(route.mall).pickup_minutes)
    if route.depart_at >= earliest:
        return
    shift = earliest - route.depart_at
    Route.objects.filter(pk=route.pk).update(depart_at=earliest, updated_at=now)
    current = RouteStop.objects.filter(route=route, is_current=True)
    current.update(eta=F("eta") + shift)
    late = list(current.filter(eta__gt=F("order__deliver_by")).values_list("order_id", flat=True))
    if late:
        order_delivery.orders_flag_delayed(
            order_ids=late, reason="The route was taken late: the driver will arrive after the deadline.", now=now
        )
    route.refresh_from_db()


def _reoffer_or_alert(*, route: Route, now: dt.datetime, why: str) -> Offer | None:
    """After an expiry or a forfeit: re-offer with the bump while the deadlines can still be
    kept, else flag the route for an operator and email the operators."""
    latest = _latest_departure(route)
    if now + dt.timedelta(minutes=REACH_MALL_MINUTES) > latest:
        Route.objects.filter(pk=route.pk).update(
            status=RouteStatus.AT_RISK,
            driver=None,
            alert=f"{why}; a driver could no longer reach the mall in time for every deadline.",
            updated_at=now,
        )
        route.refresh_from_db()
        _alert_operators(route=route, alert=route.alert)
        on_route = route.stops.filter(is_current=True).values_list("order_id", flat=True)
        order_delivery.orders_flag_delayed(order_ids=on_route, reason=route.alert, now=now)
        return None
    Route.objects.filter(pk=route.pk).update(
        status=RouteStatus.OFFERING, driver=None, reoffers=F("reoffers") + 1, updated_at=now
    )
    route.refresh_from_db()
    return offer_open(route=route, now=now)


def _offer_advance(*, offer: Offer, now: dt.datetime) -> None:
    """The current wave's window closed (or everyone in it declined): time out the silent ones,
    then widen, or expire and re-offer after the last wave."""
    OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).update(answer=Answer.TIMED_OUT, answered_at=now)
    # Alert before the deadline is missed, not after the last wave: an operator can still act.
    if now + dt.timedelta(minutes=REACH_MALL_MINUTES) > _latest_departure(offer.route):
        if _offer_close(offer=offer, to=OS.EXPIRED, now=now, reason="deadline at risk"):
            _reoffer_or_alert(route=offer.route, now=now, why="Nobody took the route yet")
        return
    if offer.wave < LAST_WAVE:
        _offer_wave(offer=offer, now=now)
        return
    if _offer_close(offer=offer, to=OS.EXPIRED, now=now, reason="nobody took it in time"):
        _reoffer_or_alert(route=offer.route, now=now, why="Nobody took the route in time")


def offers_sweep(*, now: dt.datetime, limit: int = 100) -> int:
    """The periodic sweeper: every open offer whose answer window has closed advances (widen,
    or expire and re-offer). Rows are claimed with FOR UPDATE SKIP LOCKED, so any number of
    workers can sweep at once and each offer advances once. Returns how many advanced."""
    advanced = 0
    for _ in range(limit):
        with transaction.atomic():
            offer = (
                Offer.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=OS.OPEN, due_at__lte=now)
                .select_related("route__mall")
                .order_by("due_at", "pk")
                .first()
            )
            if offer is None:
                break
            _offer_advance(offer=offer, now=now)
            advanced += 1
    return advanced


def _new_pickup_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _with_pickup_code(write: Callable[[str], T], *, other_winner: Callable[[], bool] | None = None) -> T | None:
    """`write(code)` with a freshly drawn pickup code, drawn again on a live code clash (the
    unique index on live codes; one in a million). None when `other_winner()` says the clash was
    the one-accepted-offer index refusing a second winner instead."""
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return write(_new_pickup_code())
        except IntegrityError:
            if other_winner is not None and other_winner():
                return None
    raise ActionRefused("Could not issue a pickup code; please try again.", code="conflict")  # pragma: no cover


def _route_summary(route: Route, *, pay_cents: int, stops: int) -> dict:
    """What a driver's message says of a route (the offer, route.assigned and route.taken_back
    kinds)."""
    return {
        "route": route.pk,
        "mall": route.mall.name,
        "pay": f"{pay_cents / 100:.2f}",
        "stops": stops,
        "miles": route.estimated_miles,
        "minutes": route.estimated_minutes,
    }


def offer_accept(*, offer: Offer, driver: Driver, now: dt.datetime | None = None) -> Offer:
    """open → accepted, for a driver the offer reached. Exactly one driver wins: the conditional
    UPDATE lets the first through and the partial unique index backs it up; everyone else is
    told it is already taken. The winner accepting again (a double tap) is told nothing new and
    changes nothing.

    Side effects: Offer (driver, pickup code); Route assigned; the other recipients' answers;
    one `driver.offer_accepted` event; a "driver arriving" email to each store's active staff."""
    now = now or timezone.now()
    try:
        _offer_accept(offer=offer, driver=driver, now=now)
    except ActionRefused as refused:
        # Too late: the offer went to someone else or closed. Any other refusal (busy, documents)
        # leaves the answer pending, so an operator does not read "tried after it was taken".
        if refused.code in {"taken", "expired", "withdrawn"}:
            OfferRecipient.objects.filter(offer=offer, driver=driver, answer=Answer.PENDING).update(
                answer=Answer.LATE, answered_at=now
            )
        raise
    return offer


def _offer_accept(*, offer: Offer, driver: Driver, now: dt.datetime) -> bool:
    with transaction.atomic():
        row = OfferRecipient.objects.filter(offer=offer, driver=driver, offered_at__isnull=False).first()
        if row is None:
            raise ActionRefused("This offer was not sent to you.", code="not-offered")
        if row.answer == Answer.DECLINED:
            raise ActionRefused("You declined this offer.", code="declined")
        # Two accepts of two routes by one driver (a double tap, two tabs) serialise here, so the
        # second sees the first's route and is refused as busy.
        driver_status = _lock_driver(driver)
        if Offer.objects.filter(pk=offer.pk, driver=driver, status=OS.ACCEPTED).exists():
            # A second tap on Accept (a double tap, a resent form; after the lock, so also
            # one racing the first): the route is already theirs.
            offer.refresh_from_db()
            return True
        if driver_status != DS.ACTIVE:
            raise ActionRefused("Your account is not active.", code="not-active")
        # The offer went out while the documents were valid; one may have run out since.
        if problems := invalid_documents(driver, now=now):
            raise ActionRefused(
                f"You cannot take offers: {'; '.join(problems)}. Send a valid one to Mallrun operations.",
                code="documents",
            )
        # After the status and documents: those say why the driver was taken offline.
        if row.answer == Answer.OFFLINE:
            raise ActionRefused(
                "You went offline before answering, so this offer went to other drivers.", code="offline"
            )
        if active_route_for_driver(driver=driver) is not None:
            raise ActionRefused("Finish your current route before taking another.", code="busy")
        changed = _with_pickup_code(
            lambda code: Offer.objects.filter(pk=offer.pk, status=OS.OPEN).update(
                status=OS.ACCEPTED, driver=driver, accepted_at=now, pickup_code=code
            ),
            other_winner=lambda: Offer.objects.filter(route_id=offer.route_id, status=OS.ACCEPTED).exists(),
        )
        if changed != 1:
            # Say what closed it: the answer window (the sweeper got there first) or cancelled
            # orders are not another driver; an operator giving the route to someone is.
            closed = Offer.objects.filter(pk=offer.pk).values_list("status", flat=True).first()
            if closed == OS.EXPIRED:
                raise ActionRefused("This offer expired before your answer came in.", code="expired")
            held = Offer.objects.filter(route_id=offer.route_id, status__in=[OS.ACCEPTED, OS.COMPLETED]).exists()
            if closed == OS.WITHDRAWN and not held:
                raise ActionRefused("This offer was withdrawn: its orders were cancelled.", code="withdrawn")
            raise ActionRefused("Sorry, this route was already taken by another driver.", code="taken")
        Route.objects.filter(pk=offer.route_id).update(status=RouteStatus.ASSIGNED, driver=driver, updated_at=now)
        OfferRecipient.objects.filter(pk=row.pk).update(answer=Answer.ACCEPTED, answered_at=now)
        OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).exclude(pk=row.pk).update(
            answer=Answer.TAKEN, answered_at=now
        )
        _record_driver_event(
            driver=driver, type="driver.offer_accepted", acting_user=driver.user, data={"offer": offer.pk}, at=now
        )
        route = Route.objects.select_related("mall").get(pk=offer.route_id)
        _route_retime(route=route, now=now)
        _notify_store_staff(
            route=route, store_ids=route.stops.values_list("store_id", flat=True), kind="driver.arriving", driver=driver
        )
    offer.refresh_from_db()
    return True


@transaction.atomic
def offer_decline(*, offer: Offer, driver: Driver, now: dt.datetime | None = None) -> Offer:
    """The driver says no. When everyone the current wave reached has answered, the offer widens
    at once instead of waiting for the window to close.

    Side effects: the recipient's answer; one `driver.offer_declined` event; maybe a new wave."""
    now = now or timezone.now()
    locked = Offer.objects.select_for_update().select_related("route__mall").get(pk=offer.pk)
    changed = OfferRecipient.objects.filter(offer=locked, driver=driver, answer=Answer.PENDING).update(
        answer=Answer.DECLINED, answered_at=now
    )
    if changed != 1:
        raise ActionRefused("This offer is no longer waiting for your answer.", code="not-pending")
    _record_driver_event(
        driver=driver, type="driver.offer_declined", acting_user=driver.user, data={"offer": offer.pk}, at=now
    )
    _advance_when_nobody_pending(offer=locked, now=now)
    return locked


def _advance_when_nobody_pending(*, offer: Offer, now: dt.datetime) -> None:
    """Everyone the current wave reached has answered (or can no longer answer): the offer
    widens at once instead of waiting for the window to close. `offer` is locked."""
    if offer.status == OS.OPEN and not offer.recipients.filter(answer=Answer.PENDING).exists():
        _offer_advance(offer=offer, now=now)


def _pass_on_pending_offers(*, driver: Driver, now: dt.datetime) -> int:
    """The driver went offline (or was paused, deactivated, or lost a document) with offers
    still waiting for their answer. They can take none of them now, so each answer becomes
    `offline` and an offer left with nobody to wait for widens at once, as after a decline.
    Offers are locked in id order, after the driver's row (as an accept locks them), so this
    and a decline or an accept never wait for each other in a circle. Returns how many."""
    offer_ids = sorted(
        OfferRecipient.objects.filter(driver=driver, answer=Answer.PENDING, offer__status=OS.OPEN).values_list(
            "offer_id", flat=True
        )
    )
    for offer_id in offer_ids:
        locked = Offer.objects.select_for_update().select_related("route__mall").get(pk=offer_id)
        if OfferRecipient.objects.filter(offer=locked, driver=driver, answer=Answer.PENDING).update(
            answer=Answer.OFFLINE, answered_at=now
        ):
            _advance_when_nobody_pending(offer=locked, now=now)
    return len(offer_ids)


@transaction.atomic
def offer_forfeit(*, offer: Offer, driver: Driver, reason: str = "", now: dt.datetime | None = None) -> Offer | None:
    """The driver gives the route back. Before any pickup, accepted → forfeited: the whole
    route is re-offered at once with the bump (the forfeiting driver left out). After pickups
    at some of its stores, the picked-up part stays with the driver (offer still accepted,
    route re-planned and its pay re-quoted for what they keep) and the unstarted part (every
    store not yet handed over) becomes a new route, re-offered at once with the bump. Refused
    once nothing is left to pick up.

    Locks the offer first, as the handoff does, so a forfeit and a handoff at the same store
    serialise: whichever commits first wins and the other sees its result.

    Side effects: Offer, Route; one `driver.offer_forfeited` (or `driver.offer_forfeited_part`)
    event; a new Route and Offer for the unstarted part (or an operator alert)."""
    now = now or timezone.now()
    locked = Offer.objects.select_for_update().select_related("route__mall").get(pk=offer.pk)
    if locked.driver_id != driver.pk or locked.status != OS.ACCEPTED:
        raise ActionRefused("You do not hold this route.", code="not-yours")
    route = Route.objects.select_for_update().select_related("mall").get(pk=locked.route_id)
    current = list(route.stops.filter(is_current=True).select_related("order").order_by("sequence"))
    pending = [stop for stop in current if stop.status == StopStatus.PENDING]
    reason = reason.strip()
    if len(pending) == len(current):
        _offer_close(offer=locked, to=OS.FORFEITED, now=now, reason=reason or "given back by the driver")
        _record_driver_event(
            driver=driver,
            type="driver.offer_forfeited",
            acting_user=driver.user,
            reason=reason,
            data={"offer": offer.pk},
            at=now,
        )
        return _reoffer_or_alert(route=locked.route, now=now, why=f"{driver} gave the route back")
    if not pending:
        raise ActionRefused(
            "You already picked up every package: finish the route or report a problem.", code="started"
        )
    # The unstarted part leaves this route before it joins the new one: one current route per order.
    RouteStop.objects.filter(pk__in=[stop.pk for stop in pending]).update(status=StopStatus.MOVED, is_current=False)
    rest = Route.objects.create(
        mall=route.mall,
        status=RouteStatus.OFFERING,
        packages=max(1, sum(stop.planned_packages for stop in pending)),
        estimated_miles=Decimal("0"),
        estimated_minutes=1,
        depart_at=now,
        reoffers=route.reoffers,
        split_from=route,
        created_at=now,
        updated_at=now,
    )
    RouteStop.objects.bulk_create(
        RouteStop(
            route=rest,
            order_id=stop.order_id,
            store_id=stop.store_id,
            sequence=sequence,
            eta=stop.eta,
            miles_from_previous=stop.miles_from_previous,
            planned_packages=stop.planned_packages,
            ready_expected_at=stop.ready_expected_at,
        )
        for sequence, stop in enumerate(pending, start=1)
    )
    # Estimate the new route from the mall, now; its pay is quoted when it is offered.
    _route_replan(route=rest, now=now, why="given back by another driver", tell_driver=False)
    # The driver keeps what is in the car: its plan and pay shrink to that part (their choice).
    _route_replan(
        route=route, now=now, why="you gave back the stores not yet visited", keep_pay=False, tell_driver=False
    )
    _record_driver_event(
        driver=driver,
        type="driver.offer_forfeited_part",
        acting_user=driver.user,
        reason=reason,
        data={
            "offer": offer.pk,
            "route": route.pk,
            "new_route": rest.pk,
            "orders": [stop.order_id for stop in pending],
        },
        at=now,
    )
    rest.refresh_from_db()
    if rest.status == RouteStatus.CANCELLED:
        # Nothing of it fits a typical car (the re-plan moved it off): the next build routes it.
        return None
    return _reoffer_or_alert(route=rest, now=now, why=f"{driver} gave back part of route {route.pk}")


@transaction.atomic
def route_reoffer(*, route: Route, acting_user: AbstractBaseUser | None, now: dt.datetime | None = None) -> Offer:
    """An operator re-offers a route that is at risk (nobody took it). Side effects: a new Offer."""
    now = now or timezone.now()
    if (
        Route.objects.filter(pk=route.pk, status=RouteStatus.AT_RISK).update(
            status=RouteStatus.OFFERING, alert="", reoffers=F("reoffers") + 1, updated_at=now
        )
        != 1
    ):
        raise ActionRefused("Only a route waiting for an operator can be re-offered.", code="illegal-transition")
    route.refresh_from_db()
    return offer_open(route=route, now=now)


# Routes an operator may give to a driver of their choice: not yet picked up anywhere.
ASSIGNABLE = (RouteStatus.OFFERING, RouteStatus.AT_RISK, RouteStatus.ASSIGNED)


@transaction.atomic
def route_assign(
    *, route: Route, driver: Driver, acting_user: AbstractBaseUser | None, now: dt.datetime | None = None
) -> Offer:
    """An operator gives a route to a driver they chose (one they reached by phone, say): a
    route being offered, waiting for an operator, or assigned to someone else and not yet
    started. The driver must be able to take it as if they had accepted it: active, documents
    valid, online in the mall's market and on no other route.

    Locks the driver, then the route's live offers, then the route (the order an accept and a
    forfeit lock them in), so an accept racing this ends with one winner.

    Side effects: the open offer withdrawn (its pending answers become `taken`) or the held
    one forfeited; a new accepted Offer with a pickup code and its recipient row, at the pay
    offered last (or a fresh quote); Route assigned to the driver; one `driver.route_assigned`
    event; the driver, the driver who held it and the stores are told (outbox)."""
    now = now or timezone.now()
    status = _lock_driver(driver)
    driver.refresh_from_db()
    if status != DS.ACTIVE:
        raise ActionRefused(
            f"{driver} is {DriverStatus(status).label.lower()}: only an active driver can take a route.",
            code="not-active",
        )
    if problems := invalid_documents(driver, now=now):
        raise ActionRefused(f"{driver} cannot take routes: {'; '.join(problems)}.", code="documents")
    live = list(Offer.objects.select_for_update().filter(route=route, status__in=[OS.OPEN, OS.ACCEPTED]).order_by("pk"))
    route = Route.objects.select_for_update().select_related("mall__market").get(pk=route.pk)
    if (
        route.status not in ASSIGNABLE
        or route.stops.filter(is_current=True).exclude(status=StopStatus.PENDING).exists()
    ):
        raise ActionRefused(
            f"{route} is {RouteStatus(route.status).label.lower()}: only a route not yet picked up anywhere "
            "can be given to a driver.",
            code="illegal-transition",
        )
    if route.driver_id == driver.pk:
        raise ActionRefused(f"{driver} already has {route}.", code="already")
    market = route.mall.market
    if not driver.is_online or driver.online_market_id != market.pk:
        raise ActionRefused(f"{driver} is not online in {market.name}: ask them to go online first.", code="offline")
    if active_route_for_driver(driver=driver) is not None:
        raise ActionRefused(f"{driver} is on another route: give them this one once it is finished.", code="busy")
    why = f"given to {driver} by an operator"
    previous = None
    for offer in live:
        if offer.status == OS.OPEN:
            _offer_close(offer=offer, to=OS.WITHDRAWN, now=now, reason=why)
            OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).update(
                answer=Answer.TAKEN, answered_at=now
            )
        else:
            previous = offer.driver
            _offer_close(offer=offer, to=OS.FORFEITED, now=now, reason=why)
    stops = route.stops.filter(is_current=True).count()
    if live:
        pay_cents, bump_cents = live[-1].pay_cents, live[-1].bump_cents
    else:
        quote = _route_quote(route, stops=stops, attempt=route.reoffers)
        pay_cents, bump_cents = quote.total_cents + route.wait_pay_cents, quote.bump_cents
    offer = _with_pickup_code(
        lambda code: Offer.objects.create(
            route=route,
            status=OS.ACCEPTED,
            attempt=route.reoffers,
            pay_cents=pay_cents,
            bump_cents=bump_cents,
            opened_at=now,
            due_at=now,
            driver=driver,
            accepted_at=now,
            pickup_code=code,
        )
    )
    OfferRecipient.objects.create(offer=offer, driver=driver, offered_at=now, answer=Answer.ACCEPTED, answered_at=now)
    Route.objects.filter(pk=route.pk).update(status=RouteStatus.ASSIGNED, driver=driver, alert="", updated_at=now)
    route.refresh_from_db()
    _route_retime(route=route, now=now)
    _record_driver_event(
        driver=driver,
        type="driver.route_assigned",
        acting_user=acting_user,
        data={"offer": offer.pk, "route": route.pk, "from_driver": previous.pk if previous else None},
        at=now,
    )
    context = _route_summary(route, pay_cents=pay_cents, stops=stops)
    _notify(driver=driver, kind="route.assigned", context=context, dedupe_key=f"route-assigned-{offer.pk}")
    if previous is not None:
        _notify(driver=previous, kind="route.taken_back", context=context, dedupe_key=f"route-taken-back-{offer.pk}")
    _notify_store_staff(
        route=route, store_ids=route.stops.values_list("store_id", flat=True), kind="driver.arriving", driver=driver
    )
    return offer


# --- handoff at the store ---------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffCheck:
    offer: Offer
    route: Route
    driver: Driver
    stops: list[RouteStop]  # this store's stops still to hand over
    labels: list[str]  # every package label expected


def handoff_verify_code(*, store: Store, code: str) -> HandoffCheck:
    """Store staff scanned or typed a driver's pickup code: whose route it is and which of this
    store's packages go with them. Reads only. Refuses (ActionRefused) an unknown code, a code of
    a driver who gave the route back (wrong driver), a route with nothing from this store (wrong
    store), or one already handed over here."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        raise ActionRefused("A pickup code has 6 digits.", code="validation")
    offer = (
        Offer.objects.filter(pickup_code=code, status__in=[OS.ACCEPTED, OS.FORFEITED, OS.COMPLETED])
        .select_related("route__mall", "driver__user")
        .order_by("-accepted_at")
        .first()
    )
    if offer is None:
        raise ActionRefused("No driver has this pickup code: check the digits with the driver.", code="unknown-code")
    if offer.status != OS.ACCEPTED:
        raise ActionRefused(
            "Wrong driver: this code is no longer valid, the route was given back or finished. Do not hand "
            "anything over.",
            code="wrong-driver",
        )
    stops = list(
        RouteStop.objects.filter(route_id=offer.route_id, is_current=True, store=store)
        .exclude(order__status=OrderStatus.CANCELLED)
        .select_related("order")
        .prefetch_related("order__packages")
        .order_by("sequence")
    )
    if not stops:
        # A cancelled order of this store was on the route (its stop still here until the sweep
        # takes it off, or already taken off): say so, rather than send staff looking for a
        # wrong store.
        cancelled = sorted(
            RouteStop.objects.filter(
                route_id=offer.route_id, store=store, order__status=OrderStatus.CANCELLED
            ).values_list("order__marketplace_order_id", flat=True)
        )
        if cancelled:
            raise ActionRefused(
                f"Order {', '.join(cancelled)} was cancelled: keep its packages at {store.name} and hand nothing "
                "over for it.",
                code="cancelled",
            )
        raise ActionRefused(
            f"Wrong store: {offer.driver}'s route has no packages from {store.name}.", code="wrong-store"
        )
    pending = [stop for stop in stops if stop.status == StopStatus.PENDING]
    if not pending:
        raise ActionRefused(f"{store.name}'s packages were already handed to {offer.driver}.", code="already-handed")
    packing = [stop.order.number for stop in pending if stop.order.status != OrderStatus.READY]
    if packing:
        raise ActionRefused(
            f"Order {', '.join(packing)} is still being packed: mark it ready, then scan the code again.",
            code="not-ready",
        )
    labels = [package.label_code for stop in pending for package in stop.order.packages.all()]
    return HandoffCheck(offer=offer, route=offer.route, driver=offer.driver, stops=pending, labels=labels)


def handoff_confirm_packages(
    *, store: Store, code: str, labels: Iterable[str], acting_user: AbstractBaseUser | None
) -> Handoff:
    """Staff confirmed every package label (scanned or ticked): the orders become picked_up.
    A label from elsewhere or a missing one blocks the whole handoff and writes nothing.

    Side effects: per order `orders.delivery.order_pick_up` (stock leaves the store, event);
    RouteStop picked up; Route under way; one Handoff row (chain of custody: who, where, when,
    which labels) with any wait pay; one `driver.handoff` event."""
    with transaction.atomic():
        # Lock the offer before reading the route, as a forfeit does: the two serialise, and
        # the check below sees the stores a forfeit that won moved to another route.
        digits = "".join(ch for ch in code if ch.isdigit())
        list(Offer.objects.select_for_update().filter(pickup_code=digits, status=OS.ACCEPTED).values_list("pk"))
        check = handoff_verify_code(store=store, code=code)
        # Lock the route's offer so a forfeit cannot slip in between check and handoff.
        if not Offer.objects.select_for_update().filter(pk=check.offer.pk, status=OS.ACCEPTED).exists():
            raise ActionRefused("The driver gave this route back a moment ago.", code="wrong-driver")
        given = {label.strip().upper() for label in labels if label.strip()}
        expected = set(check.labels)
        stray = sorted(given - expected)
        if stray:
            raise ActionRefused(
                f"Label {', '.join(stray)} is not part of {check.driver}'s pickup here: set it aside.",
                code="wrong-package",
            )
        missing = sorted(expected - given)
        if missing:
            raise ActionRefused(
                f"Missing package {', '.join(missing)}: find and confirm every package before handing over.",
                code="missing-package",
            )
        now = timezone.now()
        for stop in check.stops:
            if stop.order.status == OrderStatus.CANCELLED:
                RouteStop.objects.filter(pk=stop.pk).update(status=StopStatus.CANCELLED, is_current=False)
                continue
            order_delivery.order_pick_up(
                order=stop.order,
                acting_user=acting_user,
                data={
                    "driver": check.driver.pk,
                    "route": check.route.pk,
                    "labels": [package.label_code for package in stop.order.packages.all()],
                },
            )
            if not RouteStop.objects.filter(pk=stop.pk, is_current=True, status=StopStatus.PENDING).update(
                status=StopStatus.PICKED_UP, picked_up_at=now
            ):  # pragma: no cover - the offer lock above keeps the stop in place
                raise ActionRefused("The route changed a moment ago: scan the code again.", code="conflict")
        check_in = StoreCheckIn.objects.filter(route=check.route, store=store, driver=check.driver).first()
        wait_cents = 0
        if check_in is not None and not check_in.store_was_ready:
            rules = pay_settings_for(check.route.mall.market_id).rules
            wait_cents = pay_rules.wait_pay_cents(rules=rules, waited_minutes=(now - check_in.at).total_seconds() / 60)
        handoff = Handoff.objects.create(
            route=check.route,
            store=store,
            driver=check.driver,
            staff=acting_user if acting_user is not None and acting_user.is_authenticated else None,
            staff_label=actor_label_for(acting_user),
            at=now,
            labels=sorted(expected),
            checked_in_at=check_in.at if check_in else None,
            wait_pay_cents=wait_cents,
        )
        Route.objects.filter(pk=check.route.pk).update(
            status=RouteStatus.UNDER_WAY, wait_pay_cents=F("wait_pay_cents") + wait_cents, updated_at=now
        )
        if wait_cents:
            Offer.objects.filter(pk=check.offer.pk).update(pay_cents=F("pay_cents") + wait_cents)
        _record_driver_event(
            driver=check.driver,
            type="driver.handoff",
            acting_user=acting_user,
            data={"route": check.route.pk, "store": store.pk, "labels": sorted(expected), "wait_pay_cents": wait_cents},
            at=now,
        )
        return handoff


@transaction.atomic
def route_check_in(*, route: Route, store: Store, driver: Driver) -> StoreCheckIn:
    """The driver is at the store's counter. Wait pay is for a store that was not ready when
    the driver checked in (PRODUCT.md): whether every order they came for was ready then is
    kept on the check-in, and only otherwise does the clock for wait pay start. Once per store.

    Side effects: a StoreCheckIn; the first time, an email to the store's active staff."""
    route = Route.objects.select_for_update().get(pk=route.pk)
    if route.driver_id != driver.pk or route.status not in (RouteStatus.ASSIGNED, RouteStatus.UNDER_WAY):
        raise ActionRefused("This is not your route.", code="not-yours")
    to_collect = route.stops.filter(store=store, is_current=True, status=StopStatus.PENDING)
    if not to_collect.exists():
        raise ActionRefused(f"Nothing left to collect at {store.name}.", code="validation")
    check_in, created = StoreCheckIn.objects.get_or_create(
        route=route,
        store=store,
        driver=driver,
        defaults={"store_was_ready": not to_collect.exclude(order__status=OrderStatus.READY).exists()},
    )
    if created:
        _notify_store_staff(route=route, store_ids=[store.pk], kind="driver.checked_in", driver=driver)
    return check_in


# --- delivery -------------------------------------------------------------------------------------


def _finish_route_if_done(*, route: Route, now: dt.datetime) -> None:
    if route.stops.filter(is_current=True, status__in=[StopStatus.PENDING, StopStatus.PICKED_UP]).exists():
        return
    if Route.objects.filter(pk=route.pk, status=RouteStatus.UNDER_WAY).update(status=RouteStatus.DONE, updated_at=now):
        offer = Offer.objects.filter(route=route, status=OS.ACCEPTED).first()
        if offer is not None:
            _offer_close(offer=offer, to=OS.COMPLETED, now=now, reason="every stop finished")


def _driver_stop(*, stop: RouteStop, driver: Driver) -> RouteStop:
    locked = RouteStop.objects.select_for_update().select_related("route", "order").get(pk=stop.pk)
    if locked.route.driver_id != driver.pk or not locked.is_current:
        raise ActionRefused("This stop is not on your route.", code="not-yours")
    if locked.status != StopStatus.PICKED_UP:
        raise ActionRefused(
            f"This stop is {StopStatus(locked.status).label.lower()}: nothing to deliver.", code="illegal-transition"
        )
    return locked


PHOTO_SUFFIXES = {"image/png": "png", "image/webp": "webp", "image/gif": "gif"}


@transaction.atomic
def stop_deliver(*, stop: RouteStop, driver: Driver, photo: UploadedFile, pin: str = "") -> RouteStop:
    """The driver delivered: a photo, and the shopper's PIN when the order requires it.

    Side effects: `orders.delivery.order_deliver` (event with proof); the photo file; the stop;
    the route and its offer complete after the last stop."""
    locked = _driver_stop(stop=stop, driver=driver)
    now = timezone.now()
    # The form's ImageField sets content_type from what Pillow read, so a PNG keeps its suffix.
    suffix = PHOTO_SUFFIXES.get(getattr(photo, "content_type", ""), "jpg")
    name = f"order-{locked.order_id}-{secrets.token_hex(4)}.{suffix}"
    # The order change first: a wrong PIN refuses before any file is written.
    order_delivery.order_deliver(order=locked.order, acting_user=driver.user, pin=pin, photo_name=name)
    locked.photo.save(name, photo, save=False)
    RouteStop.objects.filter(pk=locked.pk).update(
        status=StopStatus.DELIVERED, finished_at=now, photo=locked.photo.name, pin_verified=locked.order.requires_pin
    )
    _finish_route_if_done(route=locked.route, now=now)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def stop_mark_undeliverable(*, stop: RouteStop, driver: Driver, reason: str) -> RouteStop:
    """The driver could not deliver: the order starts its return to the store.

    Side effects: `orders.delivery.order_mark_undeliverable`; the stop; maybe the route done."""
    locked = _driver_stop(stop=stop, driver=driver)
    now = timezone.now()
    order_delivery.order_mark_undeliverable(order=locked.order, acting_user=driver.user, reason=reason)
    RouteStop.objects.filter(pk=locked.pk).update(
        status=StopStatus.UNDELIVERABLE, finished_at=now, problem_reason=reason.strip()
    )
    _finish_route_if_done(route=locked.route, now=now)
    locked.refresh_from_db()
    return locked
