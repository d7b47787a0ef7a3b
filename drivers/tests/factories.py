"""Driver factories: explicit arguments, sensible defaults (an active, online-capable driver
with a car and valid documents), no surprises."""

import datetime as dt
import itertools
from decimal import Decimal

from django.utils import timezone

from drivers.lifecycle import DriverStatus, OfferStatus
from drivers.models import DocumentKind, Driver, DriverDocument, Offer, Route, RouteStatus, Vehicle
from portal.tests.factories import make_market, make_user
from retailers.models import Market

_numbers = itertools.count(1)


def make_driver(
    *,
    market: Market | None = None,
    status: str = DriverStatus.ACTIVE,
    online: bool = False,
    capacity_units: int = 12,
    documents_valid_until: dt.date | None = None,
    latitude: Decimal | None = Decimal("36.120000"),
    longitude: Decimal | None = Decimal("-115.170000"),
    user=None,
    **fields,
) -> Driver:
    market = market or make_market()
    number = next(_numbers)
    user = user or make_user(first_name="Dana", last_name="Driver", email=f"driver{number}@drivers.example")
    fields.setdefault("phone", f"+1702555{number:04d}")
    driver = Driver.objects.create(
        user=user,
        home_market=market,
        status=status,
        status_reason="Test" if status == DriverStatus.DEACTIVATED else "",
        is_online=online,
        online_market=market if online else None,
        latitude=latitude,
        longitude=longitude,
        location_updated_at=timezone.now() if online else None,
        **fields,
    )
    Vehicle.objects.create(driver=driver, capacity_units=capacity_units)
    until = documents_valid_until or (timezone.now().date() + dt.timedelta(days=365))
    for kind in DocumentKind.values:
        DriverDocument.objects.create(
            driver=driver, kind=kind, number=f"{kind[:3].upper()}-{driver.pk}", expires_on=until
        )
    return driver


def set_documents_expiry(driver: Driver, expires_on: dt.date, *, kind: str | None = None) -> None:
    """Gives the driver's documents (or the one of `kind`) a new expiry date, through save(): an
    UPDATE of expires_on alone would leave their valid_until where it was."""
    documents = driver.documents.all() if kind is None else driver.documents.filter(kind=kind)
    for document in documents:
        document.expires_on = expires_on
        document.save()


def make_ready_order(
    *,
    store,
    packages: int = 1,
    latitude: Decimal = Decimal("36.140000"),
    longitude: Decimal = Decimal("-115.170000"),
    deliver_in: dt.timedelta = dt.timedelta(hours=3),
    **fields,
):
    """An order of `store` taken through the store's steps to ready, with `packages` labels."""
    from orders.services import order_accept, order_mark_ready, order_record_picked, order_start_picking
    from portal.tests.factories import make_order

    order = make_order(store=store, latitude=latitude, longitude=longitude, deliver_in=deliver_in, **fields)
    order_accept(order=order, acting_user=None)
    order_start_picking(order=order, acting_user=None)
    order_record_picked(order=order, acting_user=None, picked={line.pk: line.quantity for line in order.lines.all()})
    order_mark_ready(order=order, acting_user=None, package_count=packages)
    return order


def make_finished_trip(
    driver, mall, *, closed_at, pay_cents, wait_cents=0, bump_cents=0, status: str = OfferStatus.COMPLETED
) -> Offer:
    """A route of `mall` that `driver` finished at `closed_at`, paid `pay_cents` (wait pay included)."""
    route = Route.objects.create(
        mall=mall,
        driver=driver,
        status=RouteStatus.DONE,
        packages=1,
        estimated_miles=Decimal("6.40"),
        estimated_minutes=38,
        depart_at=closed_at - dt.timedelta(minutes=40),
        wait_pay_cents=wait_cents,
    )
    return Offer.objects.create(
        route=route,
        status=status,
        pay_cents=pay_cents,
        bump_cents=bump_cents,
        opened_at=closed_at - dt.timedelta(minutes=50),
        due_at=closed_at - dt.timedelta(minutes=49),
        driver=driver,
        accepted_at=closed_at - dt.timedelta(minutes=49),
        closed_at=closed_at,
    )
