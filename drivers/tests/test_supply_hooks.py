"""Driver supply feeds same-day eligibility (no_driver_supply): every change to who is online in a
market queues that market's recompute after commit."""

from decimal import Decimal

import pytest

from drivers.services import driver_go_offline, driver_go_online, driver_pause
from drivers.tests.factories import make_driver
from portal.tests.factories import make_mall, make_market

pytestmark = pytest.mark.django_db


def _market_with_a_mall():
    market = make_market()
    make_mall(market=market)
    return market


def test_driver_go_online_queues_the_market_recompute(django_capture_on_commit_callbacks):
    driver = make_driver(market=_market_with_a_mall())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        driver_go_online(driver=driver, market=driver.home_market, latitude=Decimal("36.1"), longitude=Decimal("-115"))

    assert len(callbacks) == 1
    driver.refresh_from_db()
    assert driver.is_online is True


def test_driver_go_offline_queues_the_recompute_only_when_they_were_online(django_capture_on_commit_callbacks):
    market = _market_with_a_mall()
    online = make_driver(market=market, online=True)
    offline = make_driver(market=market)

    with django_capture_on_commit_callbacks(execute=False) as was_online:
        driver_go_offline(driver=online, acting_user=None)
    with django_capture_on_commit_callbacks(execute=False) as was_offline:
        driver_go_offline(driver=offline, acting_user=None)

    assert (len(was_online), len(was_offline)) == (1, 0)


def test_driver_pause_of_an_online_driver_queues_the_recompute(django_capture_on_commit_callbacks):
    driver = make_driver(market=_market_with_a_mall(), online=True)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        driver_pause(driver=driver, acting_user=None, reason="Vehicle in the shop")

    assert len(callbacks) == 1
    driver.refresh_from_db()
    assert (driver.status, driver.is_online) == ("inactive", False)


def test_driver_supply_change_in_a_market_without_malls_queues_nothing(django_capture_on_commit_callbacks):
    driver = make_driver(online=True)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        driver_go_offline(driver=driver, acting_user=None)

    assert callbacks == []
