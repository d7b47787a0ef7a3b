"""A document "valid through Nov 23" stays valid until the end of Nov 23 in the local time of the
driver's home market, not the end of Nov 23 in UTC (16:00 in Las Vegas, in the evening peak)."""

import datetime as dt
import re
import zoneinfo
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from drivers import services
from drivers.models import Answer, DocumentKind, DriverDocument, OfferRecipient
from drivers.selectors import markets_with_driver_supply
from drivers.tests.factories import make_driver, make_ready_order, set_documents_expiry
from portal.errors import ActionRefused
from portal.localtime import end_of_local_day
from portal.notifications.models import Channel, Notification
from portal.tests.factories import make_mall, make_market, make_store, make_user

LAS_VEGAS = zoneinfo.ZoneInfo("America/Los_Angeles")
PHOENIX = zoneinfo.ZoneInfo("America/Phoenix")


def _local(tz: zoneinfo.ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


# (zone, expires_on, 23:30 local on the expiry day, 00:00:01 local the day after, the end of the
# day in UTC). Phoenix keeps -07:00 all year: on the US switch days (Nov 1 and Mar 8, 2026) its
# evening is not Las Vegas's, nor Denver's.
CASES = [
    pytest.param(
        LAS_VEGAS,
        dt.date(2026, 11, 23),
        _local(LAS_VEGAS, 2026, 11, 23, 23, 30),
        _local(LAS_VEGAS, 2026, 11, 24, 0, 0, 1),
        dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC),
        id="las-vegas",
    ),
    pytest.param(
        PHOENIX,
        dt.date(2026, 11, 1),
        _local(PHOENIX, 2026, 11, 1, 23, 30),
        _local(PHOENIX, 2026, 11, 2, 0, 0, 1),
        dt.datetime(2026, 11, 2, 7, 0, tzinfo=dt.UTC),
        id="phoenix-us-fall-back-day",
    ),
    pytest.param(
        PHOENIX,
        dt.date(2026, 3, 8),
        _local(PHOENIX, 2026, 3, 8, 23, 30),
        _local(PHOENIX, 2026, 3, 9, 0, 0, 1),
        dt.datetime(2026, 3, 9, 7, 0, tzinfo=dt.UTC),
        id="phoenix-us-spring-forward-day",
    ),
]


def _driver_whose_licence_expires(expires_on: dt.date, tz: zoneinfo.ZoneInfo, *, online: bool = True, **fields):
    """A driver (online) at a mall of a market in `tz`, made a week before `expires_on`; the
    licence expires that day, the insurance a year after the driver was made."""
    with time_machine.travel(dt.datetime.combine(expires_on - dt.timedelta(days=7), dt.time(12), tzinfo=tz)):
        mall = make_mall(time_zone=tz.key)
        driver = make_driver(
            market=mall.market, online=online, latitude=mall.latitude, longitude=mall.longitude, **fields
        )
        set_documents_expiry(driver, expires_on, kind=DocumentKind.LICENCE)
    return mall, driver


@pytest.mark.parametrize(
    ("day", "tz", "expected"),
    [
        (dt.date(2026, 11, 23), LAS_VEGAS, dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)),
        # Las Vegas on its switch days: the day after ends at 00:00 of the new offset.
        (dt.date(2026, 3, 8), LAS_VEGAS, dt.datetime(2026, 3, 9, 7, 0, tzinfo=dt.UTC)),
        (dt.date(2026, 11, 1), LAS_VEGAS, dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)),
        (dt.date(2026, 3, 8), PHOENIX, dt.datetime(2026, 3, 9, 7, 0, tzinfo=dt.UTC)),
        # Chile skips its midnight (00:00 → 01:00): Sep 5 ends at 01:00 -03:00.
        (dt.date(2026, 9, 5), zoneinfo.ZoneInfo("America/Santiago"), dt.datetime(2026, 9, 6, 4, 0, tzinfo=dt.UTC)),
        # Cuba reads its midnight twice (01:00 → 00:00): Oct 31 ends at the first.
        (dt.date(2026, 10, 31), zoneinfo.ZoneInfo("America/Havana"), dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC)),
    ],
)
def test_end_of_local_day_is_the_first_instant_of_the_next_local_day(day, tz, expected):
    end = end_of_local_day(day, tz)

    assert end == expected
    assert (end - dt.timedelta(microseconds=1)).astimezone(tz).date() == day
    assert end.astimezone(tz).date() == day + dt.timedelta(days=1)


@pytest.mark.django_db
@pytest.mark.parametrize(("tz", "expires_on", "evening", "after_midnight", "end"), CASES)
def test_document_valid_until_is_the_end_of_its_date_in_the_home_market(tz, expires_on, evening, after_midnight, end):
    _mall, driver = _driver_whose_licence_expires(expires_on, tz)

    licence = DriverDocument.objects.get(driver=driver, kind=DocumentKind.LICENCE)

    assert licence.valid_until == end
    assert (licence.is_valid_at(evening), licence.is_valid_at(after_midnight)) == (True, False)


@pytest.mark.django_db
@pytest.mark.parametrize(("tz", "expires_on", "evening", "after_midnight", "end"), CASES)
def test_markets_with_driver_supply_counts_driver_through_the_local_expiry_day(
    tz, expires_on, evening, after_midnight, end
):
    mall, _driver = _driver_whose_licence_expires(expires_on, tz)

    assert markets_with_driver_supply(now=evening) == {mall.market_id}
    assert markets_with_driver_supply(now=end - dt.timedelta(microseconds=1)) == {mall.market_id}
    assert markets_with_driver_supply(now=end) == set()
    assert markets_with_driver_supply(now=after_midnight) == set()


@pytest.mark.django_db
@pytest.mark.parametrize(("tz", "expires_on", "evening", "after_midnight", "end"), CASES)
def test_route_offered_to_driver_through_the_local_expiry_day(tz, expires_on, evening, after_midnight, end):
    mall, driver = _driver_whose_licence_expires(expires_on, tz)
    store = make_store(mall=mall)
    north = {"latitude": mall.latitude + Decimal("0.020000"), "longitude": mall.longitude}

    with time_machine.travel(evening, tick=False):
        make_ready_order(store=store, **north)
        [in_time] = services.routes_build_for_mall(mall=mall, now=evening, time_limit_s=0.1)
    with time_machine.travel(after_midnight, tick=False):
        make_ready_order(store=store, **north)
        [too_late] = services.routes_build_for_mall(mall=mall, now=after_midnight, time_limit_s=0.1)

    offered = OfferRecipient.objects.get(offer__route=in_time, driver=driver)
    not_offered = OfferRecipient.objects.get(offer__route=too_late, driver=driver)
    assert offered.answer == Answer.PENDING
    assert (not_offered.answer, not_offered.not_offered_reason) == (
        Answer.NOT_OFFERED,
        f"documents: driving licence expired on {expires_on:%b %d, %Y}",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("tz", "expires_on", "evening", "after_midnight", "end"), CASES)
def test_driver_go_online_allowed_through_the_local_expiry_day(tz, expires_on, evening, after_midnight, end):
    mall, driver = _driver_whose_licence_expires(expires_on, tz)
    services.driver_go_offline(driver=driver, acting_user=None)

    with time_machine.travel(evening, tick=False):
        services.driver_go_online(driver=driver, market=mall.market, latitude=None, longitude=None)
    services.driver_go_offline(driver=driver, acting_user=None)
    with time_machine.travel(after_midnight, tick=False), pytest.raises(ActionRefused) as refused:
        services.driver_go_online(driver=driver, market=mall.market, latitude=None, longitude=None)

    driver.refresh_from_db()
    assert driver.is_online is False
    assert refused.value.message == (
        f"You cannot go online: driving licence expired on {expires_on:%b %d, %Y}. "
        "Send a valid one to Mallrun operations."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("tz", "expires_on", "evening", "after_midnight", "end"), CASES)
def test_documents_sweep_takes_driver_off_at_the_end_of_the_local_expiry_day_and_tells_once(
    tz, expires_on, evening, after_midnight, end
):
    _mall, driver = _driver_whose_licence_expires(expires_on, tz)

    in_the_evening = services.documents_sweep(now=evening)
    driver.refresh_from_db()
    online_in_the_evening = driver.is_online
    with time_machine.travel(end, tick=False):
        at_midnight = services.documents_sweep(now=end)
    again = services.documents_sweep(now=after_midnight)

    driver.refresh_from_db()
    assert (in_the_evening, online_in_the_evening) == (0, True)
    assert (at_midnight, again, driver.is_online) == (1, 0, False)
    assert driver.events.get(type="driver.offline").at == end
    rows = Notification.objects.filter(user=driver.user).order_by("channel")
    assert [(row.channel, row.subject, row.body) for row in rows] == [
        (
            channel,
            "Your driving licence has expired",
            f"Your driving licence expired on {expires_on:%b %d, %Y}. You will not receive offers until a "
            "valid one is on file: send it to Mallrun operations.",
        )
        for channel in (Channel.EMAIL, Channel.SMS)
    ]


@pytest.mark.django_db
def test_driver_approve_accepts_documents_through_the_local_expiry_day():
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS, online=False, status="inactive")

    with time_machine.travel(_local(LAS_VEGAS, 2026, 11, 23, 23, 30), tick=False):
        services.driver_approve(driver=driver, acting_user=None)

    driver.refresh_from_db()
    assert driver.status == "active"


@pytest.mark.django_db
def test_documents_refresh_valid_until_follows_the_home_market_and_its_zone():
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    other = make_driver(market=make_market(time_zone="America/Los_Angeles"))
    set_documents_expiry(other, dt.date(2026, 11, 23))
    phoenix = make_market(time_zone="America/Phoenix")
    driver.home_market = phoenix
    driver.save(update_fields=["home_market"])

    moved = services.documents_refresh_valid_until(driver_ids=[driver.pk])
    type(phoenix).objects.filter(pk=other.home_market_id).update(time_zone="America/New_York")
    rezoned = services.documents_refresh_valid_until(market_ids=[other.home_market_id])

    licence = driver.documents.get(kind=DocumentKind.LICENCE)
    # Both documents of each: the insurance, valid for a year, ends its day elsewhere too.
    assert (moved, rezoned) == (2, 2)
    assert licence.valid_until == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
    assert {document.valid_until for document in other.documents.all()} == {
        dt.datetime(2026, 11, 24, 5, 0, tzinfo=dt.UTC)
    }


@pytest.fixture
def operator_client():
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
def test_market_admin_zone_change_moves_its_drivers_document_expiry(operator_client):
    mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    market = mall.market

    response = operator_client.post(
        reverse("admin:retailers_market_change", args=[market.pk]),
        {
            "name": market.name,
            "slug": market.slug,
            "time_zone": "America/Phoenix",
            "malls-TOTAL_FORMS": "0",
            "malls-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    licence = driver.documents.get(kind=DocumentKind.LICENCE)
    assert licence.valid_until == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)


def _change_form_data(response) -> dict:
    """What the admin change page would post back unchanged: its form's and inlines' values."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms.append(formset.management_form)
        forms.extend(formset.forms)
    for form in forms:
        for field in form:
            value = field.value()
            if value is not None and value is not False:
                data[field.html_name] = value
    return data


@pytest.mark.django_db
def test_driver_admin_home_market_change_moves_the_document_expiry(operator_client):
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    phoenix = make_market(time_zone="America/Phoenix")
    url = reverse("admin:drivers_driver_change", args=[driver.pk])
    data = _change_form_data(operator_client.get(url))

    response = operator_client.post(url, {**data, "home_market": phoenix.pk})

    assert response.status_code == 302
    licence = driver.documents.get(kind=DocumentKind.LICENCE)
    assert licence.valid_until == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_renewed_document_is_swept_again_when_its_new_date_ends():
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    first_end = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(first_end, tick=False):
        assert services.documents_sweep(now=first_end) == 1

    with time_machine.travel(first_end + dt.timedelta(days=1), tick=False):
        # Renewed to a date before the insurance's (a year after the driver was made).
        set_documents_expiry(driver, dt.date(2027, 11, 10), kind=DocumentKind.LICENCE)
    licence = driver.documents.get(kind=DocumentKind.LICENCE)
    renewed = (licence.valid_until, licence.expiry_notified_at)
    second_end = dt.datetime(2027, 11, 11, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(second_end, tick=False):
        before_its_end = services.documents_sweep(now=second_end - dt.timedelta(seconds=1))
        at_its_end = services.documents_sweep(now=second_end)

    assert renewed == (second_end, None)
    assert (before_its_end, at_its_end) == (0, 1)
    assert [row.body for row in Notification.objects.filter(user=driver.user, channel=Channel.SMS).order_by("pk")] == [
        f"Your driving licence expired on {day}. You will not receive offers until a valid one is on file: "
        "send it to Mallrun operations."
        for day in ("Nov 23, 2026", "Nov 10, 2027")
    ]


def _document_lines(html: str) -> list[tuple[str, str]]:
    """(state, text) of each document on the driver's page, whitespace collapsed."""
    items = re.findall(r'<li class="driver-document driver-document-(\w+)">(.*?)</li>', html, flags=re.S)
    return [(state, " ".join(re.sub(r"<[^>]+>", "", text).split())) for state, text in items]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("at", "licence", "hint"),
    [
        (_local(LAS_VEGAS, 2026, 11, 1, 9, 0), ("valid", "Driving licence valid through Nov 23, 2026."), False),
        (
            _local(LAS_VEGAS, 2026, 11, 13, 9, 0),
            ("expiring", "Driving licence valid through Nov 23, 2026, in 10 days: renew it soon."),
            True,
        ),
        (
            _local(LAS_VEGAS, 2026, 11, 22, 23, 30),
            ("expiring", "Driving licence valid through tomorrow, Nov 23, 2026: renew it soon."),
            True,
        ),
        (
            _local(LAS_VEGAS, 2026, 11, 23, 23, 30),
            ("expiring", "Driving licence valid through today, Nov 23, 2026: renew it now."),
            True,
        ),
        (
            _local(LAS_VEGAS, 2026, 11, 24, 0, 0, 1),
            (
                "expired",
                "Driving licence expired on Nov 23, 2026: you get no offers until a valid one is on file.",
            ),
            True,
        ),
    ],
)
def test_driver_page_shows_each_document_valid_through_its_local_date(at, licence, hint):
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    client = Client()
    client.force_login(driver.user)

    with time_machine.travel(at, tick=False):
        response = client.get(reverse("driver:home"))

    html = response.content.decode()
    assert response.status_code == 200
    assert _document_lines(html) == [licence, ("valid", "Vehicle insurance valid through Nov 16, 2027.")]
    assert ("Send the new document to Mallrun operations" in html) is hint


@pytest.mark.django_db
def test_driver_page_says_a_missing_document_is_not_on_file():
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    driver.documents.filter(kind=DocumentKind.INSURANCE).delete()
    client = Client()
    client.force_login(driver.user)

    with time_machine.travel(_local(LAS_VEGAS, 2026, 11, 1, 9, 0), tick=False):
        response = client.get(reverse("driver:home"))

    assert _document_lines(response.content.decode()) == [
        ("valid", "Driving licence valid through Nov 23, 2026."),
        ("missing", "Vehicle insurance none on file: you get no offers until one is."),
    ]


@pytest.mark.django_db
def test_documents_remind_once_from_a_week_before_the_local_end_of_the_date():
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    # The licence ends at 00:00 Nov 24 in Las Vegas (08:00 UTC): a week before is 00:00 Nov 17.
    week_before = dt.datetime(2026, 11, 17, 8, 0, tzinfo=dt.UTC)

    early = services.documents_remind(now=week_before - dt.timedelta(seconds=1))
    with time_machine.travel(week_before, tick=False):
        due = services.documents_remind(now=week_before)
    again = services.documents_remind(now=week_before + dt.timedelta(days=3))

    assert (early, due, again) == (0, 1, 0)
    assert driver.documents.get(kind=DocumentKind.LICENCE).expiry_reminded_at == week_before
    rows = Notification.objects.filter(user=driver.user).order_by("channel")
    assert [(row.channel, row.subject, row.body) for row in rows] == [
        (
            channel,
            "Your driving licence runs out on Nov 23",
            "Your driving licence is valid through Nov 23, 2026. Send the renewed one to Mallrun operations "
            "before then to keep receiving offers.",
        )
        for channel in (Channel.EMAIL, Channel.SMS)
    ]


@pytest.mark.django_db
def test_documents_remind_no_inactive_driver_and_nothing_already_expired():
    _mall, inactive = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS, online=False, status="inactive")
    _mall, lapsed = _driver_whose_licence_expires(dt.date(2026, 11, 20), LAS_VEGAS)

    reminded = services.documents_remind(now=dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC))

    assert reminded == 0
    assert Notification.objects.filter(user__in=[inactive.user, lapsed.user]).count() == 0


@pytest.mark.django_db
def test_renewed_document_is_reminded_of_again_before_its_new_date_ends():
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    assert services.documents_remind(now=dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)) == 1

    with time_machine.travel(dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC), tick=False):
        # Renewed to a date before the insurance's (a year after the driver was made).
        set_documents_expiry(driver, dt.date(2027, 11, 10), kind=DocumentKind.LICENCE)
    reminded_after_renewal = driver.documents.get(kind=DocumentKind.LICENCE).expiry_reminded_at
    next_reminder = services.documents_remind(now=dt.datetime(2027, 11, 4, 8, 0, tzinfo=dt.UTC))

    assert (reminded_after_renewal, next_reminder) == (None, 1)
    subjects = Notification.objects.filter(user=driver.user, channel=Channel.SMS).order_by("pk")
    assert [row.subject for row in subjects] == [
        "Your driving licence runs out on Nov 23",
        "Your driving licence runs out on Nov 10",
    ]


def _documents_column(html: str) -> list[str]:
    return sorted(" ".join(cell.split()) for cell in re.findall(r'<td class="field-documents">(.*?)</td>', html, re.S))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("choice", "column"),
    [
        (
            "",
            [
                "driving licence expired Nov 10, 2026",
                "driving licence runs out Nov 23, 2026",
                "valid through Jun 1, 2027",
            ],
        ),
        ("lapsed", ["driving licence expired Nov 10, 2026"]),
        ("expiring", ["driving licence runs out Nov 23, 2026"]),
        ("valid", ["valid through Jun 1, 2027"]),
    ],
)
def test_driver_admin_lists_and_filters_drivers_by_their_documents(operator_client, choice, column):
    for expires_on in (dt.date(2026, 11, 10), dt.date(2026, 11, 23), dt.date(2027, 6, 1)):
        _driver_whose_licence_expires(expires_on, LAS_VEGAS)
    url = reverse("admin:drivers_driver_changelist") + (f"?documents={choice}" if choice else "")

    with time_machine.travel(_local(LAS_VEGAS, 2026, 11, 13, 9, 0), tick=False):
        response = operator_client.get(url)

    assert response.status_code == 200
    assert _documents_column(response.content.decode()) == column


@pytest.mark.django_db
def test_driver_page_reads_documents_for_the_page_not_for_the_offers_poll():
    _mall, driver = _driver_whose_licence_expires(dt.date(2026, 11, 23), LAS_VEGAS)
    client = Client()
    client.force_login(driver.user)
    table = DriverDocument._meta.db_table

    def document_reads(**headers) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("driver:home"), **headers).status_code == 200
        return sum(table in query["sql"] for query in queries.captured_queries)

    assert (document_reads(), document_reads(HTTP_HX_REQUEST="true")) == (1, 0)
