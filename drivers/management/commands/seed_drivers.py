"""Demo drivers: driver-lv-1, -2, -3 in Las Vegas and two in every other market, password
mallrun-demo, each with a car and valid documents. The first driver of every market with a mall
is online at its first mall; the second is not online but on a scheduled shift covering the
next four hours from seeding (the Shifts card of their page shows it, and it counts as driver
supply). Idempotent: running it again changes nothing that exists; a later run gives the second
driver a shift again if none covers that time. seed_demo can call it after it
created the markets and malls (`call_command("seed_drivers")`)."""

import contextlib
import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from drivers.lifecycle import DriverStatus
from drivers.models import DocumentKind, Driver, DriverDocument, DriverShift, Vehicle
from drivers.services import driver_shift_schedule
from portal.errors import ActionRefused
from retailers.models import Market

DEMO_SHIFT = dt.timedelta(hours=4)
DEMO_PASSWORD = "mallrun-demo"  # noqa: S105 - the documented demo password
NAMES = ["Ana", "Ben", "Cruz", "Dee"]


class Command(BaseCommand):
    help = "Creates demo drivers in every market (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        created = 0
        for market in Market.objects.prefetch_related("malls"):
            prefix = "lv" if market.slug == "las-vegas" else market.slug
            count = 3 if market.slug == "las-vegas" else 2
            mall = market.malls.order_by("pk").first()
            for n in range(1, count + 1):
                username = f"driver-{prefix}-{n}"
                user, made = get_user_model().objects.get_or_create(
                    username=username, defaults={"first_name": NAMES[n - 1], "email": f"{username}@example.com"}
                )
                if made:
                    user.set_password(DEMO_PASSWORD)
                    user.save(update_fields=["password"])
                if Driver.objects.filter(user=user).exists():
                    continue
                online = n == 1 and mall is not None
                driver = Driver.objects.create(
                    user=user,
                    home_market=market,
                    # A phone, so the demo SMS log (var/sms.log) shows offers going out.
                    phone=f"+1702555{market.pk % 100:02d}{n:02d}",
                    status=DriverStatus.ACTIVE,
                    is_online=online,
                    online_market=market if online else None,
                    latitude=mall.latitude if mall else None,
                    longitude=mall.longitude if mall else None,
                    location_updated_at=timezone.now() if online else None,
                )
                Vehicle.objects.create(driver=driver, make_model="Toyota Corolla", capacity_units=12)
                today = timezone.now().date()
                for kind in DocumentKind.values:
                    # The third driver's licence runs out soon: their page shows the warning.
                    days = 5 if n == 3 and kind == DocumentKind.LICENCE else 365
                    DriverDocument.objects.create(
                        driver=driver, kind=kind, number=f"DEMO-{driver.pk}", expires_on=today + dt.timedelta(days=days)
                    )
                created += 1
            if mall is not None:
                self._shift_for(Driver.objects.filter(user__username=f"driver-{prefix}-2").first())
        self.stdout.write(f"Demo drivers created: {created} (password {DEMO_PASSWORD}).")

    def _shift_for(self, driver: Driver | None) -> None:
        """A shift from now, on the quarter hour, for DEMO_SHIFT, unless one already covers now."""
        if driver is None or driver.status != DriverStatus.ACTIVE:
            return
        now = timezone.now()
        if DriverShift.objects.filter(driver=driver, starts_at__lte=now, ends_at__gt=now).exists():
            return
        starts_at = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        # A shift the driver scheduled themselves overlaps it: theirs stays.
        with contextlib.suppress(ActionRefused):
            driver_shift_schedule(driver=driver, starts_at=starts_at, ends_at=starts_at + DEMO_SHIFT, now=now)
