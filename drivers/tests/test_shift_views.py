"""The Shifts card of the driver's page: shifts listed in the home market's local time, scheduling
and cancelling with and without htmx, errors next to the fields, 403/404/405 as every driver
page."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.test import Client

from drivers.lifecycle import DriverStatus
from drivers.models import DriverShift
from drivers.tests.factories import make_driver
from portal.tests.factories import make_market, make_user

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
PHOENIX = zoneinfo.ZoneInfo("America/Phoenix")
# Tuesday 2026-11-24, 16:00 in Phoenix (UTC-7 all year).
NOW = dt.datetime(2026, 11, 24, 16, 0, tzinfo=PHOENIX)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _driver(time_zone: str = "America/Phoenix", **fields):
    return make_driver(market=make_market(time_zone=time_zone), documents_valid_until=dt.date(2027, 12, 31), **fields)


def _client(driver) -> Client:
    client = Client()
    client.force_login(driver.user)
    return client


def _shift(driver, starts_at, ends_at) -> DriverShift:
    return DriverShift.objects.create(driver=driver, market=driver.home_market, starts_at=starts_at, ends_at=ends_at)


def _shifts(driver) -> list[tuple[dt.datetime, dt.datetime]]:
    return list(DriverShift.objects.filter(driver=driver).values_list("starts_at", "ends_at"))


@pytest.mark.parametrize(
    ("time_zone", "label"),
    [
        ("America/Phoenix", "Tue Nov 24, 5:00 PM – 9:00 PM"),
        # The same instants in Los Angeles (PST, UTC-8): an hour earlier on the clock.
        ("America/Los_Angeles", "Tue Nov 24, 4:00 PM – 8:00 PM"),
    ],
)
def test_page_lists_shifts_not_ended_in_the_home_markets_local_time(time_zone, label):
    driver = _driver(time_zone)
    _shift(driver, NOW - 3 * HOUR, NOW - HOUR)
    _shift(driver, NOW + HOUR, NOW + 5 * HOUR)

    html = _client(driver).get("/driver/").content.decode()

    assert f"<span>{label}</span>" in html
    assert html.count('class="driver-shift"') == 1


def test_page_marks_the_shift_under_way_with_an_end_now_button():
    driver = _driver()
    _shift(driver, NOW - HOUR, NOW + HOUR)

    html = _client(driver).get("/driver/").content.decode()

    assert "<span>Tue Nov 24, 3:00 PM – 5:00 PM <strong>(under way)</strong></span>" in html
    assert 'End now<span class="visually-hidden"> shift Tue Nov 24, 3:00 PM – 5:00 PM</span>' in html


def test_schedule_without_javascript_redirects_with_a_message():
    driver = _driver()
    client = _client(driver)

    response = client.post("/driver/shifts/", {"day": "2026-11-24", "starts": "17:00", "ends": "21:00"})

    assert (response.status_code, response["Location"]) == (302, "/driver/")
    assert _shifts(driver) == [(NOW + HOUR, NOW + 5 * HOUR)]
    page = client.get("/driver/").content.decode()
    assert "Shift scheduled: Tue Nov 24, 5:00 PM – 9:00 PM." in page


def test_schedule_with_an_end_before_the_start_ends_the_next_day():
    driver = _driver()

    _client(driver).post("/driver/shifts/", {"day": "2026-11-24", "starts": "22:00", "ends": "02:00"})

    assert _shifts(driver) == [(NOW + 6 * HOUR, NOW + 10 * HOUR)]
    assert DriverShift.objects.get().local_label() == "Tue Nov 24, 10:00 PM – Wed Nov 25, 2:00 AM"


def test_schedule_with_htmx_answers_the_card_and_announces_it():
    driver = _driver()

    response = _client(driver).post(
        "/driver/shifts/", {"day": "2026-11-24", "starts": "17:00", "ends": "21:00"}, **HTMX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<div id="shifts" class="stack">')
    assert "<html" not in html
    assert (
        '<p id="shifts-status" data-hx-swap-oob="innerHTML">Shift scheduled: Tue Nov 24, 5:00 PM – 9:00 PM.</p>' in html
    )
    assert "<span>Tue Nov 24, 5:00 PM – 9:00 PM</span>" in html


def test_schedule_with_a_missing_date_shows_the_error_next_to_the_field_and_writes_nothing():
    driver = _driver()

    response = _client(driver).post("/driver/shifts/", {"day": "", "starts": "17:00", "ends": "21:00"})

    html = response.content.decode()
    assert response.status_code == 422
    assert '<p class="field-error" id="shift-day-error">This field is required.</p>' in html
    assert 'aria-describedby="shift-day-error" aria-invalid="true"' in html
    assert _shifts(driver) == []


def test_schedule_with_the_same_start_and_end_is_an_error_on_the_end_time():
    driver = _driver()

    response = _client(driver).post(
        "/driver/shifts/", {"day": "2026-11-24", "starts": "17:00", "ends": "17:00"}, **HTMX
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert '<p class="field-error" id="shift-ends-error">The end time must differ from the start time.</p>' in html
    assert 'aria-describedby="shift-ends-error shift-ends-help" aria-invalid="true"' in html
    assert _shifts(driver) == []


def test_schedule_refused_by_the_service_shows_its_message():
    driver = _driver()
    _shift(driver, NOW + HOUR, NOW + 5 * HOUR)

    response = _client(driver).post(
        "/driver/shifts/", {"day": "2026-11-24", "starts": "20:00", "ends": "23:00"}, **HTMX
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert (
        '<p class="message message-error" role="alert">That overlaps your shift Tue Nov 24, 5:00 PM – 9:00 PM.</p>'
        in html
    )
    assert _shifts(driver) == [(NOW + HOUR, NOW + 5 * HOUR)]


def test_schedule_by_a_driver_who_is_not_active_is_403_and_the_page_says_why():
    driver = _driver(status=DriverStatus.INACTIVE)
    client = _client(driver)

    response = client.post("/driver/shifts/", {"day": "2026-11-24", "starts": "17:00", "ends": "21:00"})

    assert response.status_code == 403
    assert _shifts(driver) == []
    assert "Your account is paused: you cannot schedule shifts." in client.get("/driver/").content.decode()


def test_schedule_and_cancel_send_a_get_home_and_answer_403_to_a_non_driver():
    driver = _driver()
    shift = _shift(driver, NOW + HOUR, NOW + 2 * HOUR)
    stranger = Client()
    stranger.force_login(make_user())

    assert _client(driver).get("/driver/shifts/")["Location"] == "/driver/"
    assert _client(driver).get(f"/driver/shifts/{shift.pk}/cancel/")["Location"] == "/driver/"
    assert _client(driver).delete("/driver/shifts/").status_code == 405
    assert stranger.post(f"/driver/shifts/{shift.pk}/cancel/").status_code == 403
    assert DriverShift.objects.count() == 1


def test_cancel_without_javascript_deletes_the_shift_and_redirects():
    driver = _driver()
    shift = _shift(driver, NOW + HOUR, NOW + 5 * HOUR)
    client = _client(driver)

    response = client.post(f"/driver/shifts/{shift.pk}/cancel/")

    assert (response.status_code, response["Location"]) == (302, "/driver/")
    assert _shifts(driver) == []
    assert "Shift Tue Nov 24, 5:00 PM – 9:00 PM cancelled." in client.get("/driver/").content.decode()


def test_cancel_with_htmx_of_a_shift_under_way_ends_it_now():
    driver = _driver()
    shift = _shift(driver, NOW - HOUR, NOW + HOUR)

    response = _client(driver).post(f"/driver/shifts/{shift.pk}/cancel/", **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        '<p id="shifts-status" data-hx-swap-oob="innerHTML">Shift Tue Nov 24, 3:00 PM – 5:00 PM ended now.</p>' in html
    )
    assert "No shifts scheduled." in html
    assert _shifts(driver) == [(NOW - HOUR, NOW)]


def test_cancel_of_another_drivers_shift_is_404_while_it_exists():
    driver, other = _driver(), _driver()
    shift = _shift(other, NOW + HOUR, NOW + 2 * HOUR)

    response = _client(driver).post(f"/driver/shifts/{shift.pk}/cancel/")

    assert response.status_code == 404
    assert _shifts(other) == [(NOW + HOUR, NOW + 2 * HOUR)]


def test_cancel_of_a_shift_that_ended_meanwhile_shows_the_refusal():
    driver = _driver()
    shift = _shift(driver, NOW - 2 * HOUR, NOW)

    response = _client(driver).post(f"/driver/shifts/{shift.pk}/cancel/", **HTMX)

    assert response.status_code == 409
    assert (
        '<p class="message message-error" role="alert">That shift has already ended.</p>' in response.content.decode()
    )


@pytest.mark.parametrize(
    ("day", "starts", "ends"),
    [
        # Past midnight on the calendar's last day: the next day does not exist.
        ("9999-12-31", "23:00", "01:00"),
        # The calendar's last evening in Phoenix is already the year 10000 in UTC.
        ("9999-12-31", "20:00", "22:00"),
    ],
)
def test_schedule_on_a_day_at_the_end_of_the_calendar_is_an_error_on_the_date(day, starts, ends):
    driver = _driver()
    client = Client(raise_request_exception=False)
    client.force_login(driver.user)

    response = client.post("/driver/shifts/", {"day": day, "starts": starts, "ends": ends}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert '<p class="field-error" id="shift-day-error">Pick a date within the next 14 days.</p>' in html
    assert _shifts(driver) == []
