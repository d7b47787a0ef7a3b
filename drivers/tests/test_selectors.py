import datetime as dt

import pytest
from django.utils import timezone

from drivers.lifecycle import DriverStatus
from drivers.models import DocumentKind
from drivers.selectors import markets_with_driver_supply
from drivers.tests.factories import make_driver
from portal.tests.factories import make_market

pytestmark = pytest.mark.django_db


def test_markets_with_driver_supply_counts_online_active_drivers_with_valid_documents():
    now = timezone.now()
    supplied, offline_only, expired_only, paused_only = (make_market() for _ in range(4))
    make_driver(market=supplied, online=True)
    make_driver(market=offline_only, online=False)
    make_driver(market=expired_only, online=True, documents_valid_until=now.date() - dt.timedelta(days=2))
    make_driver(market=paused_only, status=DriverStatus.INACTIVE)

    assert markets_with_driver_supply(now=now) == {supplied.pk}


def test_markets_with_driver_supply_needs_both_documents():
    now = timezone.now()
    market = make_market()
    driver = make_driver(market=market, online=True)
    driver.documents.filter(kind=DocumentKind.INSURANCE).delete()

    assert markets_with_driver_supply(now=now) == set()


def test_markets_with_driver_supply_document_valid_through_its_expiry_day():
    # Noon in Las Vegas (the market's zone) on the expiry day.
    now = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)
    market = make_market(time_zone="America/Los_Angeles")
    make_driver(market=market, online=True, documents_valid_until=dt.date(2026, 11, 23))

    assert markets_with_driver_supply(now=now) == {market.pk}
    assert markets_with_driver_supply(now=now + dt.timedelta(days=1)) == set()


def test_markets_with_driver_supply_one_id_per_market_with_many_drivers():
    now = timezone.now()
    market = make_market()
    make_driver(market=market, online=True)
    make_driver(market=market, online=True)

    assert markets_with_driver_supply(now=now) == {market.pk}
