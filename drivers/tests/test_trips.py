"""The driver's Trips and pay page: what each finished trip paid, by day in the home market's time,
the totals of today, this week and the last 30 days, and the driver's standing."""

import datetime as dt
import io
import re
import zoneinfo
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from drivers import selectors, services
from drivers.lifecycle import OfferStatus
from drivers.tests.factories import make_driver, make_finished_trip, make_ready_order
from portal.tests.factories import make_mall, make_market, make_store, make_user

pytestmark = pytest.mark.django_db

PHOENIX = zoneinfo.ZoneInfo("America/Phoenix")
# A Wednesday, 10:00 in Phoenix (17:00 UTC).
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=PHOENIX)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def phoenix():
    market = make_market(name="Chandler", time_zone="America/Phoenix")
    mall = make_mall(market=market, name="Chandler Fashion Center", time_zone="America/Phoenix")
    return market, mall


def test_earnings_count_finished_trips_today_this_week_and_last_30_days_in_the_home_markets_zone(phoenix) -> None:
    market, mall = phoenix
    driver = make_driver(market=market)
    make_finished_trip(driver, mall, closed_at=NOW.replace(hour=9), pay_cents=2000)  # today
    monday_night = dt.datetime(2026, 11, 23, 23, 30, tzinfo=PHOENIX)
    make_finished_trip(driver, mall, closed_at=monday_night, pay_cents=1500)
    # Sunday 23:59 in Phoenix is already Monday in UTC: still last week.
    make_finished_trip(driver, mall, closed_at=dt.datetime(2026, 11, 22, 23, 59, tzinfo=PHOENIX), pay_cents=1200)
    make_finished_trip(driver, mall, closed_at=NOW - dt.timedelta(days=31), pay_cents=9900)  # too long ago
    make_finished_trip(driver, mall, closed_at=NOW.replace(hour=8), pay_cents=4400, status=OfferStatus.FORFEITED)
    someone_else = make_driver(market=market)
    make_finished_trip(someone_else, mall, closed_at=NOW.replace(hour=9), pay_cents=3300)

    earnings = selectors.earnings_for_driver(driver=driver, now=NOW)

    assert [(period.label, period.trips, period.cents) for period in earnings] == [
        ("Today", 1, 2000),
        ("This week", 2, 3500),
        ("Last 30 days", 3, 4700),
    ]
    assert earnings[1].since == dt.datetime(2026, 11, 23, 0, 0, tzinfo=PHOENIX)


def _logged_in(user) -> Client:
    """A client logged in at the time in force (log in inside time_machine: an idle session ends)."""
    client = Client()
    client.force_login(user)
    return client


def _page_text(response) -> str:
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_trips_page_lists_finished_trips_by_day_with_route_and_wait_pay_and_each_days_total(phoenix) -> None:
    market, mall = phoenix
    driver = make_driver(market=market)
    nine = NOW.replace(hour=9, minute=5)
    make_finished_trip(driver, mall, closed_at=nine, pay_cents=2450, wait_cents=150, bump_cents=200)
    make_finished_trip(driver, mall, closed_at=NOW.replace(hour=8, minute=40), pay_cents=1800)
    make_finished_trip(driver, mall, closed_at=dt.datetime(2026, 11, 24, 19, 15, tzinfo=PHOENIX), pay_cents=2100)
    make_finished_trip(driver, mall, closed_at=dt.datetime(2026, 11, 20, 12, 0, tzinfo=PHOENIX), pay_cents=1000)
    with time_machine.travel(NOW, tick=False):
        response = _logged_in(driver.user).get("/driver/trips/")

    assert response.status_code == 200
    text = _page_text(response)
    assert "Today $42.50 · 2 trips This week $63.50 · 3 trips Last 30 days $73.50 · 4 trips" in text
    days = re.findall(r"<h3 id=\"day-[^\"]+\">(.*?)</h3>", response.content.decode(), flags=re.S)
    assert [re.sub(r"<[^>]+>|\s+", " ", day).split() for day in days] == [
        ["Today", "·", "$42.50,", "2", "trips"],
        ["Yesterday", "·", "$21.00,", "1", "trip"],
        ["Friday,", "November", "20", "·", "$10.00,", "1", "trip"],
    ]
    assert "$24.50 · finished 9:05 AM Chandler Fashion Center : 0 delivered · 6.40 mi · about 38 min" in text
    assert "Route $23.00 (with a $2.00 bump) + wait $1.50" in text
    assert "$18.00 · finished 8:40 AM" in text
    assert "Route $18.00 " in text


def test_trips_page_day_total_counts_the_days_trips_on_the_other_page(phoenix) -> None:
    market, mall = phoenix
    driver = make_driver(market=market)
    for minute in range(21):
        make_finished_trip(driver, mall, closed_at=NOW.replace(hour=8, minute=minute), pay_cents=1000)
    with time_machine.travel(NOW, tick=False):
        client = _logged_in(driver.user)
        first = client.get("/driver/trips/").content.decode()
        second = client.get("/driver/trips/?page=2").content.decode()
        beyond = client.get("/driver/trips/?page=99999999999999999999999")

    assert first.count('class="driver-card trip"') == 20
    assert second.count('class="driver-card trip"') == 1
    for html in (first, second):
        assert "$210.00, 21 trips" in html
    assert "Page 1 of 2" in first and 'rel="next"' in first
    assert "Page 2 of 2" in second and 'rel="prev"' in second
    assert beyond.status_code == 200
    assert "Page 2 of 2" in beyond.content.decode()


def test_trips_page_shows_only_the_drivers_own_trips_and_is_for_drivers_only(phoenix) -> None:
    market, mall = phoenix
    driver, other = make_driver(market=market), make_driver(market=market)
    make_finished_trip(other, mall, closed_at=NOW.replace(hour=9), pay_cents=3100)
    with time_machine.travel(NOW, tick=False):
        client = _logged_in(driver.user)
        stranger = _logged_in(make_user("not-a-driver"))
        mine = _page_text(client.get("/driver/trips/"))
        refused = stranger.get("/driver/trips/")

    assert "$31.00" not in mine
    assert "No finished trips yet." in mine
    assert "Today $0.00 · 0 trips" in mine
    assert refused.status_code == 403


def test_trip_delivered_through_the_route_shows_its_pay_stops_and_standing() -> None:
    mall = make_mall(name="Fashion Show", time_zone="America/Los_Angeles")
    store = make_store(mall=mall, name="Zara")
    delivered = make_ready_order(store=store, latitude=Decimal("36.150000"), longitude=mall.longitude)
    returned = make_ready_order(store=store, latitude=Decimal("36.151000"), longitude=mall.longitude)
    driver = make_driver(market=mall.market, online=True, latitude=mall.latitude, longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = services.offer_accept(offer=route.offers.get(), driver=driver)
    labels = [package.label_code for order in (delivered, returned) for package in order.packages.all()]
    services.handoff_confirm_packages(store=store, code=offer.pickup_code, labels=labels, acting_user=None)
    photo = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(photo, "JPEG")
    stops = {stop.order_id: stop for stop in route.stops.all()}
    services.stop_deliver(
        stop=stops[delivered.pk], driver=driver, photo=SimpleUploadedFile("door.jpg", photo.getvalue(), "image/jpeg")
    )
    services.stop_mark_undeliverable(stop=stops[returned.pk], driver=driver, reason="Gate locked")
    offer.refresh_from_db()

    text = _page_text(_logged_in(driver.user).get("/driver/trips/"))

    assert offer.status == OfferStatus.COMPLETED
    pay = f"${offer.pay_cents / 100:,.2f}"
    assert f"Today {pay} · 1 trip " in text
    assert f"{pay} · finished" in text
    assert "Fashion Show : 1 delivered · 1 brought back ·" in text
    assert "Acceptance 100% (1 of 1)" in text
    assert "On-time pickup 100% (1 of 1)" in text
    assert "Delivery success 50% (1 of 2)" in text


def test_trip_in_a_mall_of_another_zone_than_home_names_its_zone(phoenix) -> None:
    _market, chandler = phoenix
    vegas_driver = make_driver(market=make_market(name="Las Vegas", time_zone="America/Los_Angeles"))
    make_finished_trip(vegas_driver, chandler, closed_at=NOW.replace(hour=9, minute=5), pay_cents=1500)

    with time_machine.travel(NOW, tick=False):
        text = _page_text(_logged_in(vegas_driver.user).get("/driver/trips/"))

    assert "$15.00 · finished 9:05 AM MST" in text
