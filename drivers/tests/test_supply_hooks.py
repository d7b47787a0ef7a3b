"""Driver supply feeds same-day eligibility (no_driver_supply): every change to who is online in a
market requests the recompute of that market's malls (an EligibilityRequest row per mall, written
in the change's transaction)."""

from decimal import Decimal

import pytest

from drivers.services import driver_go_offline, driver_go_online, driver_pause
from drivers.tests.factories import make_driver
from portal.tests.factories import make_mall, make_market
from retailers.models import EligibilityRequest
from retailers.models import EligibilityRequestKind as Kind

pytestmark = pytest.mark.django_db


def _market_with_a_mall():
    market = make_market()
    market.mall = make_mall(market=market)
    return market


def _requests() -> list[tuple[int, int]]:
    return sorted(EligibilityRequest.objects.values_list("kind", "object_id"))


def test_driver_go_online_requests_the_market_recompute():
    market = _market_with_a_mall()
    driver = make_driver(market=market)
    EligibilityRequest.objects.all().delete()

    driver_go_online(driver=driver, market=driver.home_market, latitude=Decimal("36.1"), longitude=Decimal("-115"))

    assert _requests() == [(Kind.MALL, market.mall.pk)]
    driver.refresh_from_db()
    assert driver.is_online is True


def test_driver_go_offline_requests_the_recompute_only_when_they_were_online():
    market = _market_with_a_mall()
    online = make_driver(market=market, online=True)
    offline = make_driver(market=market)
    EligibilityRequest.objects.all().delete()

    driver_go_offline(driver=offline, acting_user=None)
    was_offline = _requests()
    driver_go_offline(driver=online, acting_user=None)

    assert (was_offline, _requests()) == ([], [(Kind.MALL, market.mall.pk)])


def test_driver_pause_of_an_online_driver_requests_the_recompute():
    market = _market_with_a_mall()
    driver = make_driver(market=market, online=True)
    EligibilityRequest.objects.all().delete()

    driver_pause(driver=driver, acting_user=None, reason="Vehicle in the shop")

    assert _requests() == [(Kind.MALL, market.mall.pk)]
    driver.refresh_from_db()
    assert (driver.status, driver.is_online) == ("inactive", False)


def test_driver_supply_change_in_a_market_without_malls_requests_nothing():
    driver = make_driver(online=True)
    EligibilityRequest.objects.all().delete()

    driver_go_offline(driver=driver, acting_user=None)

    assert _requests() == []
