"""Reads about drivers, already scoped and with their joins decided once."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from drivers.lifecycle import DriverStatus, OfferStatus
from drivers.models import (
    REQUIRED_DOCUMENTS,
    Answer,
    DocumentKind,
    Driver,
    DriverEvent,
    DriverShift,
    Handoff,
    Offer,
    OfferRecipient,
    Route,
    RouteStatus,
    RouteStop,
    StopStatus,
)
from orders.lifecycle import OrderStatus
from portal.localtime import end_of_local_day, start_of_local_day


def _valid_documents(*, now: dt.datetime, via: str = "") -> Count:
    """How many of the required documents are valid at `now`, counted on the drivers reached
    through `via` (a relation path ending in "__", or "" on Driver itself)."""
    documents = f"{via}documents"
    return Count(
        documents,
        filter=Q(**{f"{documents}__kind__in": REQUIRED_DOCUMENTS, f"{documents}__valid_until__gt": now}),
    )


def drivers_with_valid_documents(*, now: dt.datetime) -> QuerySet[Driver]:
    """Drivers holding every required document, each still valid at `now` (through its expiry
    date in the driver's home market's local time). Reads the clock only as `now` itself: the
    marketplace intake swaps it in a statement prepared once (orders.api.reads)."""
    return Driver.objects.annotate(valid_documents=_valid_documents(now=now)).filter(
        valid_documents=len(REQUIRED_DOCUMENTS)
    )


def drivers_available(*, now: dt.datetime) -> QuerySet[Driver]:
    """Active drivers with valid documents who are online now: the ones offers can go to."""
    return drivers_with_valid_documents(now=now).filter(
        status=DriverStatus.ACTIVE, is_online=True, online_market__isnull=False
    )


def drivers_free_in_market(*, market_id: int, now: dt.datetime) -> QuerySet[Driver]:
    """The drivers who could take a route of the market right now: available (drivers_available)
    there and on no route."""
    busy = Route.objects.filter(status__in=[RouteStatus.ASSIGNED, RouteStatus.UNDER_WAY], driver__isnull=False)
    return drivers_available(now=now).filter(online_market_id=market_id).exclude(pk__in=busy.values("driver_id"))


def shifts_covering(*, now: dt.datetime) -> QuerySet[DriverShift]:
    """Shifts under way at `now` (starts_at <= now < ends_at) of active drivers with valid
    documents (the conditions of drivers_available, but not online)."""
    return (
        DriverShift.objects.filter(starts_at__lte=now, ends_at__gt=now, driver__status=DriverStatus.ACTIVE)
        .annotate(valid_documents=_valid_documents(now=now, via="driver__"))
        .filter(valid_documents=len(REQUIRED_DOCUMENTS))
    )


def driver_supply_market_ids(*, now: dt.datetime) -> QuerySet:
    """The query of markets_with_driver_supply (the marketplace intake runs it inside its own
    statement, so it stays one query: a UNION, which also removes repeated markets). Without
    ordering: the drivers' default one (by username) would join the users and take part in it."""
    online = drivers_available(now=now).order_by().values_list("online_market_id", flat=True)
    scheduled = shifts_covering(now=now).order_by().values_list("market_id", flat=True)
    return online.union(scheduled)


def markets_with_driver_supply(*, now: dt.datetime) -> set[int]:
    """Ids of the markets with driver supply at `now`: an active driver with valid documents
    online in it, or one whose scheduled shift in it covers `now` (a driver between offers or a
    few minutes late still counts; a shift starting or ending on its own is caught by the
    eligibility sweep, retailers.eligibility_sql.malls_with_driver_supply_drift)."""
    return set(driver_supply_market_ids(now=now))


def upcoming_shifts_for_driver(*, driver: Driver, now: dt.datetime) -> list[DriverShift]:
    """The driver's shifts not yet ended, soonest first (the one under way, if any, leads)."""
    return list(DriverShift.objects.filter(driver=driver, ends_at__gt=now).select_related("market"))


def offer_rows_for_driver(*, driver: Driver, now: dt.datetime) -> list[OfferRecipient]:
    """The offers waiting for this driver's answer, soonest expiry first."""
    return list(
        OfferRecipient.objects.filter(
            driver=driver, answer=Answer.PENDING, offer__status=OfferStatus.OPEN, offer__due_at__gt=now
        )
        .select_related("offer__route__mall")
        .prefetch_related(
            Prefetch(
                "offer__route__stops",
                queryset=RouteStop.objects.filter(is_current=True).select_related("store", "order"),
            )
        )
        .order_by("offer__due_at", "pk")
    )


def active_route_for_driver(*, driver: Driver) -> Route | None:
    return (
        Route.objects.filter(driver=driver, status__in=[RouteStatus.ASSIGNED, RouteStatus.UNDER_WAY])
        .order_by("-updated_at")
        .first()
    )


def returns_for_driver(*, driver: Driver) -> list[RouteStop]:
    """Packages the driver could not deliver and still has to bring back: their orders are
    returning until the store confirms the return. Each with its order (and packages), store
    and mall."""
    return list(
        RouteStop.objects.filter(
            route__driver=driver,
            status=StopStatus.UNDELIVERABLE,
            is_current=True,
            order__status=OrderStatus.RETURNING,
        )
        .select_related("order", "store__mall")
        .prefetch_related("order__packages")
        .order_by("finished_at", "pk")
    )


def route_detail_for_driver(*, route: Route) -> Route:
    return (
        Route.objects.select_related("mall", "driver__home_market")
        .prefetch_related(
            Prefetch(
                "stops",
                queryset=RouteStop.objects.filter(is_current=True)
                .select_related("order", "store")
                .prefetch_related("order__packages")
                .order_by("sequence"),
            )
        )
        .get(pk=route.pk)
    )


def route_given_back_by(*, driver: Driver, route_id: int) -> bool:
    """Whether the driver gave this route back whole (it is no longer theirs)."""
    return (
        Offer.objects.filter(route_id=route_id, driver=driver, status=OfferStatus.FORFEITED).exists()
        and not Route.objects.filter(pk=route_id, driver=driver).exists()
    )


def route_part_given_back_by(*, driver: Driver, route_id: int) -> bool:
    """Whether the driver gave back the unvisited stores of this route (they keep the rest)."""
    return DriverEvent.objects.filter(driver=driver, type="driver.offer_forfeited_part", data__route=route_id).exists()


def accepted_offer_for(route: Route) -> Offer | None:
    return Offer.objects.filter(route=route, status__in=[OfferStatus.ACCEPTED, OfferStatus.COMPLETED]).first()


@dataclass(frozen=True)
class Figure:
    label: str
    numerator: int
    denominator: int
    # The admin changelist of the events the figure was computed from, as query parameters.
    model: str
    params: dict

    @property
    def percent(self) -> int | None:
        return round(100 * self.numerator / self.denominator) if self.denominator else None


ON_TIME_GRACE = dt.timedelta(minutes=10)
STANDING_DAYS = 30


def driver_standing(*, driver: Driver, now: dt.datetime) -> list[Figure]:
    """Acceptance, on-time pickup and delivery success over the last 30 days, each with the
    filter that lists the rows it counts."""
    since = now - dt.timedelta(days=STANDING_DAYS)
    since_param = since.isoformat(timespec="seconds")
    offered = OfferRecipient.objects.filter(driver=driver, offered_at__gte=since)
    handoffs = list(Handoff.objects.filter(driver=driver, at__gte=since).select_related("route"))
    finished = RouteStop.objects.filter(
        route__driver=driver,
        finished_at__gte=since,
        status__in=[StopStatus.DELIVERED, StopStatus.UNDELIVERABLE, StopStatus.RETURNED],
    )
    return [
        Figure(
            label="Acceptance",
            numerator=offered.filter(answer=Answer.ACCEPTED).count(),
            denominator=offered.count(),
            model="offerrecipient",
            params={"driver__id__exact": driver.pk, "offered_at__gte": since_param},
        ),
        Figure(
            label="On-time pickup",
            numerator=sum(1 for handoff in handoffs if handoff.at <= handoff.route.depart_at + ON_TIME_GRACE),
            denominator=len(handoffs),
            model="handoff",
            params={"driver__id__exact": driver.pk, "at__gte": since_param},
        ),
        Figure(
            label="Delivery success",
            numerator=finished.filter(status=StopStatus.DELIVERED).count(),
            denominator=finished.count(),
            model="routestop",
            params={"route__driver__id__exact": driver.pk, "finished_at__gte": since_param},
        ),
    ]


# A document this close to the end of its date is shown as expiring on the driver's page.
DOCUMENT_WARNING = dt.timedelta(days=14)


@dataclass(frozen=True)
class DocumentStatus:
    """One required document as the driver's page shows it."""

    label: str
    expires_on: dt.date | None  # None: none on file
    state: str  # "valid", "expiring", "expired" or "missing"
    days_left: int | None  # local days from today to the expiry date (0: it ends tonight)


def document_statuses(*, driver: Driver, now: dt.datetime) -> list[DocumentStatus]:
    """Each required document of the driver, in the order of DocumentKind, with its state at
    `now`: valid through its expiry date in the home market's local time, expiring within
    DOCUMENT_WARNING, expired, or missing."""
    on_file = {document.kind: document for document in driver.documents.all()}
    today = now.astimezone(driver.home_market.tz).date()
    statuses = []
    for kind in DocumentKind:
        document = on_file.get(kind.value)
        if document is None:
            statuses.append(DocumentStatus(kind.label, None, "missing", None))
            continue
        if not document.is_valid_at(now):
            state = "expired"
        elif document.valid_until - now <= DOCUMENT_WARNING:
            state = "expiring"
        else:
            state = "valid"
        statuses.append(DocumentStatus(kind.label, document.expires_on, state, (document.expires_on - today).days))
    return statuses


# --- trips and pay ---------------------------------------------------------------------------------

EARNINGS_DAYS = 30


@dataclass(frozen=True)
class Earnings:
    """What the driver earned in one period: finished trips and their pay, wait pay included."""

    label: str
    since: dt.datetime
    trips: int
    cents: int


def earnings_for_driver(*, driver: Driver, now: dt.datetime) -> list[Earnings]:
    """Today, this week (since Monday) and the last 30 days, with days as the driver's home
    market counts them. A trip counts when it finished, with every pay it earned (the route's
    pay, its re-offer bump and wait pay at stores that were not ready)."""
    tz = driver.home_market.tz
    today = now.astimezone(tz).date()
    periods = [
        ("Today", start_of_local_day(today, tz)),
        ("This week", start_of_local_day(today - dt.timedelta(days=today.weekday()), tz)),
        (f"Last {EARNINGS_DAYS} days", now - dt.timedelta(days=EARNINGS_DAYS)),
    ]
    windows = [Q(closed_at__gte=since, closed_at__lte=now) for _label, since in periods]
    figures = _completed_offers(driver).aggregate(
        **{f"trips_{n}": Count("pk", filter=window) for n, window in enumerate(windows)},
        **{f"cents_{n}": Sum("pay_cents", filter=window, default=0) for n, window in enumerate(windows)},
    )
    return [
        Earnings(label=label, since=since, trips=figures[f"trips_{n}"], cents=figures[f"cents_{n}"])
        for n, (label, since) in enumerate(periods)
    ]


def _completed_offers(driver: Driver) -> QuerySet[Offer]:
    return Offer.objects.filter(driver=driver, status=OfferStatus.COMPLETED)


def earnings_by_day(*, driver: Driver, tz: dt.tzinfo, first: dt.date, last: dt.date) -> dict[dt.date, Earnings]:
    """Each local day (in `tz`) from `first` to `last` with finished trips: its trips and pay."""
    since, until = start_of_local_day(first, tz), end_of_local_day(last, tz)
    rows = (
        _completed_offers(driver)
        .filter(closed_at__gte=since, closed_at__lt=until)
        .annotate(day=TruncDate("closed_at", tzinfo=tz))
        .order_by()
        .values("day")
        .annotate(trips=Count("pk"), cents=Sum("pay_cents"))
    )
    return {
        row["day"]: Earnings(
            label=f"{row['day']:%A}",
            since=start_of_local_day(row["day"], tz),
            trips=row["trips"],
            cents=row["cents"],
        )
        for row in rows
    }


def trips_for_driver(*, driver: Driver) -> QuerySet[Offer]:
    """The driver's finished trips, newest first: each completed offer with its route and mall,
    how many of the route's stops were delivered and how many came back."""
    stops = "route__stops"
    return (
        _completed_offers(driver)
        .select_related("route__mall")
        .annotate(
            delivered=Count(stops, filter=Q(route__stops__is_current=True, route__stops__status=StopStatus.DELIVERED)),
            not_delivered=Count(
                stops,
                filter=Q(
                    route__stops__is_current=True,
                    route__stops__status__in=[StopStatus.UNDELIVERABLE, StopStatus.RETURNED],
                ),
            ),
        )
        .order_by("-closed_at", "-pk")
    )
