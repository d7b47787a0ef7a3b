"""The handoff at the store: staff check the driver's pickup code, confirm each package label,
and the orders leave with the driver (drivers.services does the writing)."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from drivers import services as driver_services
from drivers.models import DriverEvent, Handoff, RouteStatus, StopStatus
from drivers.tests.factories import make_driver, make_ready_order
from orders.lifecycle import OrderStatus
from orders.models import OrderEvent
from portal.tests.factories import make_mall, make_market, make_staff, make_store, make_user

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
HANDOFF = reverse("store:handoff")
CONFIRM = reverse("store:handoff-confirm")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _north(mall, miles: float) -> dict:
    return {"latitude": mall.latitude + Decimal(f"{miles / 69:.6f}"), "longitude": mall.longitude}


@pytest.fixture
def world():
    """Two stores of one mall with a ready order each (2 packages, 1 package) on one route that
    driver Ana accepted; staff at each store; a third store with nothing on the route."""
    mall = make_mall(market=make_market())
    store = make_store(mall=mall, name="Zara")
    second = make_store(mall=mall, name="Sephora")
    order = make_ready_order(store=store, packages=2, **_north(mall, 2))
    second_order = make_ready_order(store=second, packages=1, **_north(mall, 2.2))
    driver = make_driver(market=mall.market, online=True, user=make_user(first_name="Ana"), **_north(mall, 0.5))
    [route] = driver_services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    driver_services.offer_accept(offer=offer, driver=driver)
    offer.refresh_from_db()
    return {
        "mall": mall,
        "store": store,
        "second": second,
        "order": order,
        "second_order": second_order,
        "driver": driver,
        "route": route,
        "code": offer.pickup_code,
        "labels": sorted(p.label_code for p in order.packages.all()),
        "staff": make_staff(store=store).user,
        "second_staff": make_staff(store=second).user,
        "outsider": make_staff(store=make_store(mall=mall, name="Lush")).user,
    }


def _unchanged(world) -> tuple:
    """What a refused handoff must leave as it was."""
    world["order"].refresh_from_db()
    world["route"].refresh_from_db()
    return (
        world["order"].status,
        world["route"].status,
        Handoff.objects.count(),
        OrderEvent.objects.filter(type="order.picked_up").count(),
        DriverEvent.objects.filter(type="driver.handoff").count(),
    )


BEFORE = (OrderStatus.READY, RouteStatus.ASSIGNED, 0, 0, 0)


# Step 1: the code -----------------------------------------------------------------------------


def test_handoff_get_shows_code_step_beside_board(client, world):
    client.force_login(world["staff"])

    response = client.get(HANDOFF)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="handoff-code"' in html
    assert 'id="board"' in html
    assert "Step 1 of 2" in html


def test_handoff_get_htmx_returns_panel_fragment(client, world):
    client.force_login(world["staff"])

    response = client.get(HANDOFF, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    # The tab's title comes along at the fragment's root (htmx moves it to the tab).
    assert html.startswith(
        '<title>Hand over to a driver · Mallrun</title>\n<section id="order-panel" class="order-panel handoff-panel"'
    )
    assert "<html" not in html
    assert 'id="board"' not in html


def test_board_links_to_handoff_near_ready_column(client, world):
    client.force_login(world["staff"])

    html = client.get(reverse("store:board")).content.decode()

    ready = html.index('id="column-ready"')
    assert html.count(f'href="{HANDOFF}"') == 2  # the top bar and the Ready column
    assert html.index(f'href="{HANDOFF}"', ready) < html.index('id="column-done"')


def test_handoff_verify_lists_only_this_stores_packages(client, world):
    client.force_login(world["staff"])

    response = client.post(HANDOFF, {"code": f"{world['code'][:3]} {world['code'][3:]}"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Driver <strong>Ana</strong>" in html
    for label in world["labels"]:
        assert f'name="labels" value="{label}"' in html
    second_label = world["second_order"].packages.get().label_code
    assert second_label not in html
    assert html.count('name="labels"') == 2
    assert _unchanged(world) == BEFORE


def test_handoff_verify_refuses_badly_typed_code(client, world):
    client.force_login(world["staff"])

    response = client.post(HANDOFF, {"code": "12-34"}, **HTMX)

    assert response.status_code == 422
    assert "A pickup code has 6 digits" in response.content.decode()


def test_handoff_verify_refuses_unknown_code(client, world):
    client.force_login(world["staff"])
    unknown = "000000" if world["code"] != "000000" else "111111"

    response = client.post(HANDOFF, {"code": unknown}, **HTMX)

    assert response.status_code == 422
    assert "No driver has this pickup code: check the digits with the driver." in response.content.decode()
    assert _unchanged(world) == BEFORE


def test_handoff_verify_refuses_driver_who_gave_route_back(client, world):
    offer = world["route"].offers.get(status="accepted")
    driver_services.offer_forfeit(offer=offer, driver=world["driver"])
    client.force_login(world["staff"])

    response = client.post(HANDOFF, {"code": world["code"]}, **HTMX)

    assert response.status_code == 422
    html = response.content.decode()
    assert "Wrong driver: this code is no longer valid" in html
    assert 'name="labels"' not in html
    world["order"].refresh_from_db()
    assert world["order"].status == OrderStatus.READY
    assert Handoff.objects.count() == 0


def test_handoff_other_stores_staff_get_wrong_store_and_no_route_data(client, world):
    client.force_login(world["outsider"])

    response = client.post(HANDOFF, {"code": world["code"]}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert "Wrong store: " in html
    assert "has no packages from Lush" in html
    for label in world["labels"]:
        assert label not in html
    assert world["order"].number not in html
    assert _unchanged(world) == BEFORE


def test_handoff_confirm_by_other_stores_staff_refused_and_changes_nothing(client, world):
    client.force_login(world["outsider"])

    response = client.post(CONFIRM, {"code": world["code"], "labels": world["labels"]}, **HTMX)

    assert response.status_code == 422
    assert "Wrong store: " in response.content.decode()
    assert _unchanged(world) == BEFORE


def test_handoff_refuses_user_without_store(client, world):
    client.force_login(make_user())

    assert client.get(HANDOFF).status_code == 403


def test_handoff_anonymous_redirected_to_login(client, world):
    response = client.get(HANDOFF)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("method", "url"), [("put", HANDOFF), ("delete", HANDOFF), ("get", CONFIRM)])
def test_handoff_wrong_method_405(client, world, method, url):
    client.force_login(world["staff"])

    response = getattr(client, method)(url)

    assert response.status_code == 405
    assert _unchanged(world) == BEFORE


# Step 2: the packages ------------------------------------------------------------------------


def test_handoff_confirm_picks_up_orders_and_records_custody(client, world):
    staff = world["staff"]
    client.force_login(staff)

    response = client.post(CONFIRM, {"code": world["code"], "labels": [label.lower() for label in world["labels"]]})

    assert response.status_code == 302
    assert response["Location"] == HANDOFF
    world["order"].refresh_from_db()
    world["second_order"].refresh_from_db()
    world["route"].refresh_from_db()
    assert world["order"].status == OrderStatus.PICKED_UP
    assert world["second_order"].status == OrderStatus.READY
    assert world["route"].status == RouteStatus.UNDER_WAY
    handoff = Handoff.objects.get()
    assert (handoff.store, handoff.driver, handoff.staff, handoff.labels) == (
        world["store"],
        world["driver"],
        staff,
        world["labels"],
    )
    event = OrderEvent.objects.get(order=world["order"], type="order.picked_up")
    assert (event.actor, event.data["driver"], sorted(event.data["labels"])) == (
        staff,
        world["driver"].pk,
        world["labels"],
    )
    stop = world["route"].stops.get(order=world["order"], is_current=True)
    assert stop.status == StopStatus.PICKED_UP
    page = client.get(HANDOFF).content.decode()
    assert f"Handed 2 packages to Ana: {world['labels'][0]}, {world['labels'][1]}." in page


def test_handoff_confirm_htmx_shows_confirmation_and_triggers_board_refresh(client, world):
    client.force_login(world["staff"])

    response = client.post(CONFIRM, {"code": world["code"], "labels": world["labels"]}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<title>Hand over to a driver · Mallrun</title>\n<section id="order-panel"')
    assert f"Handed 2 packages to Ana: {', '.join(world['labels'])}." in html
    assert 'id="handoff-code"' in html  # ready for the next driver
    assert '"orderChanged"' in response["HX-Trigger"]
    board = client.get(reverse("store:board"), **HTMX).content.decode()
    ready = board[board.index('id="column-ready"') : board.index('id="column-done"')]
    assert world["order"].number not in ready


def test_handoff_confirm_with_scanned_labels_ticks_them(client, world):
    client.force_login(world["staff"])

    response = client.post(
        CONFIRM, {"code": world["code"], "labels": [world["labels"][0]], "scanned": f" {world['labels'][1]}\n"}, **HTMX
    )

    assert response.status_code == 200
    world["order"].refresh_from_db()
    assert world["order"].status == OrderStatus.PICKED_UP


def test_handoff_confirm_refuses_missing_package_and_changes_nothing(client, world):
    client.force_login(world["staff"])

    response = client.post(CONFIRM, {"code": world["code"], "labels": [world["labels"][0]]}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert f"Missing package {world['labels'][1]}: find and confirm every package before handing over." in html
    assert f'value="{world["labels"][0]}" id="label-{world["labels"][0]}" checked' in html
    assert f'value="{world["labels"][1]}" id="label-{world["labels"][1]}">' in html
    assert _unchanged(world) == BEFORE


def test_handoff_confirm_refuses_wrong_label_and_changes_nothing(client, world):
    second_label = world["second_order"].packages.get().label_code
    client.force_login(world["staff"])

    response = client.post(CONFIRM, {"code": world["code"], "labels": world["labels"], "scanned": second_label}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert f"Label {second_label} is not part of" in html
    assert f'name="scanned" id="handoff-scan" value="{second_label}"' in html
    assert _unchanged(world) == BEFORE
    world["second_order"].refresh_from_db()
    assert world["second_order"].status == OrderStatus.READY


def test_handoff_confirm_refuses_second_handoff_as_already_handed(client, world):
    client.force_login(world["staff"])
    client.post(CONFIRM, {"code": world["code"], "labels": world["labels"]}, **HTMX)

    response = client.post(CONFIRM, {"code": world["code"], "labels": world["labels"]}, **HTMX)

    assert response.status_code == 422
    assert "Zara&#x27;s packages were already handed to" in response.content.decode()
    assert Handoff.objects.count() == 1


def test_handoff_route_over_two_stores_is_handed_off_store_by_store(client, world):
    second_label = world["second_order"].packages.get().label_code
    client.force_login(world["staff"])
    client.post(CONFIRM, {"code": world["code"], "labels": world["labels"]}, **HTMX)
    client.force_login(world["second_staff"])

    listed = client.post(HANDOFF, {"code": world["code"]}, **HTMX).content.decode()
    response = client.post(CONFIRM, {"code": world["code"], "labels": [second_label]}, **HTMX)

    assert listed.count('name="labels"') == 1
    assert f'value="{second_label}"' in listed
    assert response.status_code == 200
    world["second_order"].refresh_from_db()
    assert world["second_order"].status == OrderStatus.PICKED_UP
    assert sorted(Handoff.objects.values_list("store__name", flat=True)) == ["Sephora", "Zara"]


def test_handoff_confirm_with_bad_code_shows_code_step(client, world):
    client.force_login(world["staff"])

    response = client.post(CONFIRM, {"code": "abc", "labels": world["labels"]}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert "A pickup code has 6 digits" in html
    assert 'id="handoff-code"' in html
    assert _unchanged(world) == BEFORE


# Two tabs: the page showed one store, the session was switched to another since ------------------


def _hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to `action`, as the page rendered them."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def _staff_of_both(world):
    """Staff of both stores of the route, working at Zara."""
    user = world["staff"]
    make_staff(store=world["second"], user=user)
    return user


def test_handoff_confirm_hands_over_the_store_the_page_showed_after_a_switch_in_another_tab(client, world):
    client.force_login(_staff_of_both(world))
    client.post(reverse("store:switch-store"), {"store": world["store"].pk})
    code_page = client.get(HANDOFF).content.decode()
    listed = client.post(HANDOFF, _hidden_fields(code_page, HANDOFF) | {"code": world["code"]}, **HTMX)
    client.post(reverse("store:switch-store"), {"store": world["second"].pk})  # another tab

    fields = _hidden_fields(listed.content.decode(), CONFIRM) | {"labels": world["labels"]}
    response = client.post(CONFIRM, fields, **HTMX)

    assert response.status_code == 200
    world["order"].refresh_from_db()
    world["second_order"].refresh_from_db()
    assert (world["order"].status, world["second_order"].status) == (OrderStatus.PICKED_UP, OrderStatus.READY)
    assert list(Handoff.objects.values_list("store__name", flat=True)) == ["Zara"]


def test_handoff_code_lists_the_packages_of_the_store_the_page_showed_after_a_switch_in_another_tab(client, world):
    client.force_login(_staff_of_both(world))
    client.post(reverse("store:switch-store"), {"store": world["store"].pk})
    code_page = client.get(HANDOFF).content.decode()
    client.post(reverse("store:switch-store"), {"store": world["second"].pk})  # another tab

    response = client.post(HANDOFF, _hidden_fields(code_page, HANDOFF) | {"code": world["code"]}, **HTMX)

    listed = response.content.decode()
    assert response.status_code == 200
    assert sorted(re.findall(r'name="labels" value="([^"]+)"', listed)) == world["labels"]
    assert f'<input type="hidden" name="store" value="{world["store"].pk}">' in listed


@pytest.mark.parametrize("url", [HANDOFF, CONFIRM])
def test_handoff_for_a_store_the_user_is_not_staff_of_is_404(client, world, url):
    client.force_login(world["outsider"])

    response = client.post(url, {"code": world["code"], "labels": world["labels"], "store": world["store"].pk}, **HTMX)

    assert response.status_code == 404
    assert _unchanged(world) == BEFORE


@pytest.mark.parametrize("swept", [False, True], ids=["stop-still-on-the-route", "stop-taken-off-the-route"])
def test_handoff_code_after_the_marketplace_cancelled_the_stores_order_says_so(client, world, swept):
    from orders.services import order_cancel

    order_cancel(order=world["order"], acting_user=None, reason="Shopper cancelled", actor_label="marketplace")
    if swept:  # the sweep takes the cancelled order off; Sephora's order keeps the route
        driver_services.routes_drop_cancelled_orders(now=timezone.now())
    client.force_login(world["staff"])

    response = client.post(HANDOFF, {"code": world["code"], "store": world["store"].pk}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert (
        f"Order {world['order'].number} was cancelled: keep its packages at Zara and hand nothing over for it." in html
    )
    assert "Wrong store" not in html
    assert world["route"].stops.get(order=world["order"]).is_current is not swept
