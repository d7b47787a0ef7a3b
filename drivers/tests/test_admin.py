import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from drivers import services
from drivers.lifecycle import DriverStatus
from drivers.models import Answer, Driver, DriverShift, OfferRecipient, Route, RouteStatus
from drivers.tests.factories import make_driver, make_ready_order
from portal.tests.factories import make_mall, make_market, make_seller, make_seller_manager, make_store, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client():
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_driver_status_view_approves_screening_driver(operator_client):
    driver = make_driver(status=DriverStatus.SCREENING)

    response = operator_client.post(reverse("admin:drivers_driver_status", args=[driver.pk]), {"action": "approve"})

    assert response.status_code == 302
    assert Driver.objects.get(pk=driver.pk).status == DriverStatus.ACTIVE


def test_driver_status_view_pause_needs_reason(operator_client):
    driver = make_driver()

    response = operator_client.post(reverse("admin:drivers_driver_status", args=[driver.pk]), {"action": "pause"})

    assert response.status_code == 422
    assert response.context["form"].errors == {"reason": ["Give a reason: the driver sees it."]}
    assert Driver.objects.get(pk=driver.pk).status == DriverStatus.ACTIVE


def test_driver_status_view_pause_with_a_reason_too_long_gets_that_one_message(operator_client):
    driver = make_driver()

    response = operator_client.post(
        reverse("admin:drivers_driver_status", args=[driver.pk]), {"action": "pause", "reason": "x" * 2000}
    )

    assert response.status_code == 422
    assert response.context["form"].errors == {
        "reason": ["Ensure this value has at most 300 characters (it has 2000)."]
    }
    assert Driver.objects.get(pk=driver.pk).status == DriverStatus.ACTIVE


def test_driver_status_view_deactivates_with_reason(operator_client):
    driver = make_driver(online=True)

    operator_client.post(
        reverse("admin:drivers_driver_status", args=[driver.pk]), {"action": "deactivate", "reason": "Fraud"}
    )

    driver.refresh_from_db()
    assert (driver.status, driver.status_reason, driver.is_online) == (DriverStatus.DEACTIVATED, "Fraud", False)


def test_driver_status_view_shows_refusal_as_form_error(operator_client):
    driver = make_driver(status=DriverStatus.APPLICANT)

    response = operator_client.post(reverse("admin:drivers_driver_status", args=[driver.pk]), {"action": "approve"})

    assert response.status_code == 422
    assert "<p>That change is not open to a driver who is applicant.</p>" in response.content.decode()


def test_driver_admin_hidden_from_seller_managers():
    manager = make_seller_manager(seller=make_seller())
    client = Client()
    client.force_login(manager.user)
    driver = make_driver()

    assert client.get(reverse("admin:drivers_driver_change", args=[driver.pk])).status_code == 403
    assert client.get(reverse("admin:drivers_driver_status", args=[driver.pk])).status_code == 302


def _offered_world():
    mall = make_mall()
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)
    near = make_driver(market=mall.market, online=True, latitude=mall.latitude, longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    return route, near


def test_driver_standing_links_each_figure_to_its_rows(operator_client):
    route, driver = _offered_world()
    services.offer_accept(offer=route.offers.get(), driver=driver)

    response = operator_client.get(reverse("admin:drivers_driver_change", args=[driver.pk]))

    html = response.content.decode()
    assert "Acceptance: <a href=" in html
    assert "1 of 1 (100%)</a>" in html
    link = reverse("admin:drivers_offerrecipient_changelist") + f"?driver__id__exact={driver.pk}&amp;offered_at__gte="
    assert link in html
    listed = operator_client.get(
        reverse("admin:drivers_offerrecipient_changelist"),
        {
            "driver__id__exact": driver.pk,
            "offered_at__gte": (timezone.now() - dt.timedelta(days=30)).isoformat(timespec="seconds"),
        },
    )
    assert listed.status_code == 200
    assert list(listed.context["cl"].queryset) == list(OfferRecipient.objects.filter(driver=driver))


def test_offer_admin_lists_who_was_offered_and_why_others_not(operator_client):
    mall = make_mall()
    make_ready_order(store=make_store(mall=mall), packages=2, latitude=Decimal("36.150000"), longitude=mall.longitude)
    offered = make_driver(market=mall.market, online=True)
    small = make_driver(market=mall.market, online=True, capacity_units=1)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()

    response = operator_client.get(reverse("admin:drivers_offer_change", args=[offer.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "vehicle holds 1 packages; the route has 2" in html
    assert OfferRecipient.objects.get(offer=offer, driver=offered).answer == Answer.PENDING
    assert OfferRecipient.objects.get(offer=offer, driver=small).answer == Answer.NOT_OFFERED


def test_route_admin_reoffers_route_at_risk(operator_client):
    mall = make_mall()
    order = make_ready_order(store=make_store(mall=mall), latitude=Decimal("37.500000"), longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    assert route.status == RouteStatus.AT_RISK
    Route.objects.filter(pk=route.pk).update(estimated_miles=Decimal("2"), estimated_minutes=20)

    operator_client.post(
        reverse("admin:drivers_route_changelist"), {"action": "reoffer_selected", "_selected_action": [route.pk]}
    )

    route.refresh_from_db()
    assert (route.status, route.reoffers, route.offers.count()) == (RouteStatus.OFFERING, 1, 1)
    assert order.route_stops.get().route == route


def test_operators_see_a_drivers_shifts_in_local_time_read_only(operator_client):
    from drivers.models import DriverShift
    from portal.tests.factories import make_market

    driver = make_driver(market=make_market(time_zone="America/Phoenix"))
    start = timezone.now().replace(microsecond=0) + dt.timedelta(hours=1)
    shift = DriverShift.objects.create(
        driver=driver, market=driver.home_market, starts_at=start, ends_at=start + dt.timedelta(hours=4)
    )
    old = DriverShift.objects.create(
        driver=driver,
        market=driver.home_market,
        starts_at=start - dt.timedelta(days=20),
        ends_at=start - dt.timedelta(days=20) + dt.timedelta(hours=2),
    )
    manager_client = Client()
    manager_client.force_login(make_seller_manager(seller=make_seller()).user)

    change = operator_client.get(reverse("admin:drivers_driver_change", args=[driver.pk])).content.decode()
    listing = operator_client.get(reverse("admin:drivers_drivershift_changelist") + "?when=upcoming")
    detail = operator_client.get(reverse("admin:drivers_drivershift_change", args=[shift.pk]))

    assert shift.local_label() in change
    assert old.local_label() not in change
    assert list(listing.context["cl"].result_list) == [shift]
    assert (detail.status_code, detail.context["has_change_permission"]) == (200, False)
    assert 'name="shifts-0-starts_at"' not in change
    assert manager_client.get(reverse("admin:drivers_drivershift_changelist")).status_code == 403


def test_route_and_offer_lists_show_times_in_the_malls_local_time(operator_client):
    mall = make_mall(time_zone="America/Phoenix")
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)
    make_driver(market=mall.market, online=True)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    phoenix = mall.tz

    routes = operator_client.get(reverse("admin:drivers_route_changelist")).content.decode()
    offers = operator_client.get(reverse("admin:drivers_offer_changelist")).content.decode()

    assert f"{route.depart_at.astimezone(phoenix):%a %H:%M} MST" in routes
    assert f"{offer.due_at.astimezone(phoenix):%a %H:%M:%S} MST" in offers


def _pay_settings_form(market_id: int, **changes) -> dict:
    form = {
        "market": market_id,
        "base_cents": 300,
        "per_stop_cents": 150,
        "per_mile_cents": 60,
        "hourly_floor_cents": 1800,
        "reoffer_bump_cents": 100,
        "reoffer_bump_cap_cents": 800,
        "wait_grace_minutes": 5,
        "wait_per_minute_cents": 30,
        "circuity_factor": "1.30",
        "offer_window_seconds": 60,
        "first_wave_size": 2,
        "max_stops": 8,
        "route_capacity_units": 12,
    }
    return {**form, **changes}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"offer_window_seconds": 0}, "Give drivers at least 5 seconds to answer an offer."),
        ({"offer_window_seconds": 4}, "Give drivers at least 5 seconds to answer an offer."),
        ({"route_capacity_units": 0}, "A route must hold at least one package."),
    ],
)
def test_pay_settings_that_would_stop_dispatch_are_form_errors_and_save_nothing(operator_client, changes, message):
    # An answer window of 0 s expires every offer as it is sent, and a route holding 0 packages
    # takes no order: dispatch would stop in the market without a word.
    from drivers.models import MarketPaySettings

    mall = make_mall()

    response = operator_client.post(
        reverse("admin:drivers_marketpaysettings_add"), _pay_settings_form(mall.market_id, **changes)
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert MarketPaySettings.objects.count() == 0


def test_pay_settings_with_a_5_second_window_and_one_package_routes_save(operator_client):
    from drivers.models import MarketPaySettings

    mall = make_mall()

    response = operator_client.post(
        reverse("admin:drivers_marketpaysettings_add"),
        _pay_settings_form(mall.market_id, offer_window_seconds=5, route_capacity_units=1),
    )

    assert response.status_code == 302
    saved = MarketPaySettings.objects.get()
    assert (saved.offer_window_seconds, saved.route_capacity_units) == (5, 1)


def _route_nobody_took():
    """A route too far to deliver in time once built: waiting for an operator."""
    mall = make_mall()
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("37.500000"), longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    assert route.status == RouteStatus.AT_RISK
    return mall, route


def test_route_admin_gives_a_route_nobody_took_to_a_driver_who_came_online(operator_client):
    mall, route = _route_nobody_took()
    came_online = make_driver(market=mall.market, online=True)
    make_driver(market=mall.market, online=False)
    make_driver(market=make_mall().market, online=True)
    page = reverse("admin:drivers_route_assign", args=[route.pk])

    change = operator_client.get(reverse("admin:drivers_route_change", args=[route.pk])).content.decode()
    choices = list(operator_client.get(page).context["form"].fields["driver"].queryset)
    response = operator_client.post(page, {"driver": came_online.pk}, follow=True)

    assert f'<a class="button" href="{page}">Give to a driver…</a>' in change
    assert choices == [came_online]
    route.refresh_from_db()
    offer = route.offers.get(status="accepted")
    assert (route.status, route.driver, offer.driver) == (RouteStatus.ASSIGNED, came_online, came_online)
    assert response.redirect_chain == [(reverse("admin:drivers_route_change", args=[route.pk]), 302)]
    assert [str(message) for message in response.context["messages"]] == [
        f"{route} is {came_online}'s now: their pickup code is {offer.pickup_code}."
    ]


def test_route_admin_assign_to_a_driver_who_cannot_take_it_is_a_form_error_and_changes_nothing(operator_client):
    mall, route = _route_nobody_took()
    offline = make_driver(market=mall.market, online=False)

    response = operator_client.post(reverse("admin:drivers_route_assign", args=[route.pk]), {"driver": offline.pk})

    assert response.status_code == 422
    assert response.context["form"].errors == {"driver": ["That driver can no longer take a route: choose another."]}
    route.refresh_from_db()
    assert (route.status, route.driver, route.offers.filter(status="accepted").exists()) == (
        RouteStatus.AT_RISK,
        None,
        False,
    )


def test_route_admin_assign_page_is_for_operators_only():
    _mall, route = _route_nobody_took()
    manager = Client()
    manager.force_login(make_seller_manager(seller=make_seller()).user)

    response = manager.get(reverse("admin:drivers_route_assign", args=[route.pk]))

    assert (response.status_code, response["Location"]) == (302, reverse("admin:index"))


def test_driver_list_tells_drivers_of_the_same_name_apart_by_login(operator_client):
    make_driver(user=make_user("driver-a", first_name="Ana"))
    make_driver(user=make_user("driver-b", first_name="Ana"))

    html = operator_client.get(reverse("admin:drivers_driver_changelist")).content.decode()

    assert "Ana (driver-a)" in html and "Ana (driver-b)" in html


def test_shift_list_writes_its_times_in_each_markets_zone_with_one_query_for_all_rows(operator_client):
    url = reverse("admin:drivers_drivershift_changelist")
    starts = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
    phoenix, eastern = make_market(time_zone="America/Phoenix"), make_market(time_zone="America/New_York")
    for market in (phoenix, eastern):
        DriverShift.objects.create(
            driver=make_driver(market=market), market=market, starts_at=starts, ends_at=starts + dt.timedelta(hours=2)
        )
    operator_client.get(url)
    with CaptureQueriesContext(connection) as few:
        page = operator_client.get(url).content.decode()
    for _ in range(5):
        DriverShift.objects.create(
            driver=make_driver(market=phoenix), market=phoenix, starts_at=starts, ends_at=starts + dt.timedelta(hours=1)
        )
    with CaptureQueriesContext(connection) as many:
        operator_client.get(url)

    assert "Dec. 1, 2026, 9 a.m. MST" in page  # 16:00 UTC in Phoenix
    assert "Dec. 1, 2026, 11 a.m. EST" in page  # and in Tysons' zone
    assert "Dec. 1, 2026, 4 p.m. UTC" not in page
    assert len(many) == len(few)


def test_driver_status_page_offers_only_the_changes_open_from_the_drivers_status(operator_client):
    active, gone = make_driver(), make_driver(status=DriverStatus.DEACTIVATED)
    url = reverse("admin:drivers_driver_status", args=[active.pk])

    page = operator_client.get(url).content.decode()
    refused = operator_client.post(url, {"action": "screening"})
    gone_page = operator_client.get(reverse("admin:drivers_driver_status", args=[gone.pk])).content.decode()

    assert re.findall(r'<input type="radio" name="action" value="(\w+)"', page) == ["pause", "deactivate"]
    assert refused.status_code == 422
    assert "<p>That change is not open to a driver who is active.</p>" in refused.content.decode()
    assert Driver.objects.get(pk=active.pk).status == DriverStatus.ACTIVE
    assert "A deactivated driver stays deactivated: there is no status to move them to." in gone_page
    assert 'name="action"' not in gone_page
