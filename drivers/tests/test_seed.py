import pytest
from django.core.management import call_command
from django.utils import timezone

from drivers.models import Driver
from drivers.selectors import markets_with_driver_supply
from portal.tests.factories import make_mall, make_market

pytestmark = pytest.mark.django_db


def test_seed_drivers_creates_demo_drivers_once():
    vegas = make_market(name="Las Vegas", slug="las-vegas")
    make_mall(market=vegas)
    other = make_market(name="Chandler", slug="chandler")

    call_command("seed_drivers")
    call_command("seed_drivers")

    assert sorted(Driver.objects.values_list("user__username", flat=True)) == [
        "driver-chandler-1",
        "driver-chandler-2",
        "driver-lv-1",
        "driver-lv-2",
        "driver-lv-3",
    ]
    lv1 = Driver.objects.get(user__username="driver-lv-1")
    assert lv1.user.check_password("mallrun-demo")
    assert (lv1.is_online, lv1.online_market) == (True, vegas)
    assert markets_with_driver_supply(now=timezone.now()) == {vegas.pk}
    today = timezone.now().date()
    expiries = {
        (driver.user.username, document.kind): (document.expires_on - today).days
        for driver in Driver.objects.filter(home_market=vegas).select_related("user")
        for document in driver.documents.all()
    }
    # The third driver's licence runs out in five days (their page warns); the rest in a year.
    assert expiries == {
        (f"driver-lv-{n}", kind): 5 if (n, kind) == (3, "licence") else 365
        for n in (1, 2, 3)
        for kind in ("licence", "insurance")
    }
    assert other.pk not in markets_with_driver_supply(now=timezone.now())


def test_seed_drivers_puts_the_second_driver_of_each_market_with_a_mall_on_a_shift_from_now():
    import datetime as dt

    import time_machine

    from drivers.models import DriverShift

    vegas = make_market(name="Las Vegas", slug="las-vegas")
    make_mall(market=vegas)
    make_market(name="Chandler", slug="chandler")
    seeded = dt.datetime(2026, 11, 24, 17, 7, 30, tzinfo=dt.UTC)
    quarter = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)

    with time_machine.travel(seeded, tick=False):
        call_command("seed_drivers")
        call_command("seed_drivers")
        Driver.objects.filter(user__username="driver-lv-1").update(is_online=False, online_market=None)
        supply = markets_with_driver_supply(now=timezone.now())

    assert list(DriverShift.objects.values_list("driver__user__username", "market", "starts_at", "ends_at")) == [
        ("driver-lv-2", vegas.pk, quarter, quarter + dt.timedelta(hours=4))
    ]
    assert supply == {vegas.pk}

    with time_machine.travel(seeded + dt.timedelta(hours=5), tick=False):
        call_command("seed_drivers")

    assert DriverShift.objects.count() == 2
