"""Driver-side messages go through the one outbox (portal.notifications): offers by email and SMS,
"driver arriving" and "driver at the counter" by email to the store's active staff."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from drivers import services
from drivers.tests.factories import make_driver, make_ready_order
from portal.notifications.models import Channel, Notification
from portal.tests.factories import make_mall, make_staff, make_store, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed():
    mall = make_mall()
    store = make_store(mall=mall)
    make_ready_order(store=store, packages=2, latitude=mall.latitude + Decimal("0.02"), longitude=mall.longitude)
    driver = make_driver(market=mall.market, online=True, latitude=mall.latitude, longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    return store, driver, route, route.offers.get()


def test_offer_goes_to_driver_by_email_and_sms(routed):
    _store, driver, route, offer = routed

    rows = Notification.objects.filter(kind="offer").order_by("channel")

    pay = f"{offer.pay_cents / 100:.2f}"
    assert [(row.channel, row.to, row.user_id) for row in rows] == [
        (Channel.EMAIL, driver.user.email, driver.user.pk),
        (Channel.SMS, driver.phone, driver.user.pk),
    ]
    assert rows[0].subject == f"New route: ${pay}"
    answer_by = offer.due_at.astimezone(route.mall.tz).strftime("%I:%M %p %Z").lstrip("0")  # "4:05 AM PST"
    assert rows[1].body == (
        f"Mallrun: new route ${pay}, 1 stop, {route.estimated_miles} mi from {route.mall.name}. "
        f"Answer by {answer_by}: http://127.0.0.1:8000/driver/"
    )
    assert rows[0].body.endswith(f"Answer by {answer_by}: http://127.0.0.1:8000/driver/")


def test_offer_accept_tells_active_staff_with_email_driver_is_arriving(routed):
    store, driver, route, offer = routed
    make_staff(store=store, user=make_user(email="ana@store.example"))
    make_staff(store=store, user=make_user(email=""))
    gone = make_staff(store=store, user=make_user(email="gone@store.example"))
    gone.is_active = False
    gone.save()
    make_staff(store=make_store(mall=store.mall), user=make_user(email="other@store.example"))

    services.offer_accept(offer=offer, driver=driver)

    [row] = Notification.objects.filter(kind="driver.arriving")
    assert (row.channel, row.to, row.subject) == (
        Channel.EMAIL,
        "ana@store.example",
        f"Dana Driver is coming to {store.name}",
    )
    assert row.body == (
        f"Dana Driver took route {route.pk} and is on the way to {store.name} to collect 2 packages. "
        "Ask for the pickup code on their phone."
    )


def test_refused_accept_writes_no_arriving_message(routed):
    store, driver, _route, offer = routed
    make_staff(store=store, user=make_user(email="ana@store.example"))
    services.offer_accept(offer=offer, driver=driver)
    late = make_driver(market=store.mall.market, online=True)

    with pytest.raises(services.ActionRefused):
        services.offer_accept(offer=offer, driver=late)

    assert Notification.objects.filter(kind="driver.arriving").count() == 1


def test_route_check_in_tells_staff_once(routed):
    store, driver, route, offer = routed
    make_staff(store=store, user=make_user(email="ana@store.example"))
    services.offer_accept(offer=offer, driver=driver)

    services.route_check_in(route=route, store=store, driver=driver)
    services.route_check_in(route=route, store=store, driver=driver)

    [row] = Notification.objects.filter(kind="driver.checked_in")
    assert (row.to, row.subject) == ("ana@store.example", f"Dana Driver is at {store.name}")


def test_route_at_risk_emails_each_operator_once():
    mall = make_mall()
    store = make_store(mall=mall)
    make_ready_order(
        store=store,
        deliver_in=dt.timedelta(minutes=40),
        latitude=mall.latitude + Decimal("0.02"),
        longitude=mall.longitude,
    )
    make_user(is_staff=True, is_superuser=True, email="ops@mallrun.example")
    make_user(is_staff=True, is_superuser=True, email="")
    make_user(is_staff=True, email="manager@seller.example")
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    later = timezone.now() + dt.timedelta(minutes=30)

    services.offers_sweep(now=later)
    services.offers_sweep(now=later + dt.timedelta(minutes=1))

    [row] = Notification.objects.filter(kind="route.at_risk")
    assert (row.channel, row.to, row.subject) == (
        Channel.EMAIL,
        "ops@mallrun.example",
        f"Route {route.pk} at {mall.name} needs an operator",
    )
    assert row.body == (
        "Nobody took the route yet; a driver could no longer reach the mall in time for every deadline. "
        f"Open route {route.pk} in the admin to re-offer it or call the store."
    )
