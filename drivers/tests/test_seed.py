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
