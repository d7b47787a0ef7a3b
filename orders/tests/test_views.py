import datetime as dt
import json

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from orders.board import local_datetime
from orders.lifecycle import OrderStatus
from orders.models import Order, OrderEvent, Package
from orders.services import order_accept, order_cancel, order_mark_ready, order_record_picked, order_start_picking
from orders.views import _EVENT_LABELS
from portal.tests.factories import make_listing, make_mall, make_order, make_staff, make_stock, make_store
from retailers.access import SESSION_STORE_KEY
from retailers.models import Stock

S = OrderStatus
pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shop():
    """A store with one associate and an order; another store with its own associate and order."""
    store = make_store(name="Sunglass Spot")
    staff = make_staff(store=store).user
    order = make_order(store=store, customer_name="Jamie Doe")
    other_store = make_store(name="Shoe Palace")
    other_staff = make_staff(store=other_store).user
    other_order = make_order(store=other_store)
    return store, staff, order, other_staff, other_order


def _picking(order, user):
    order_accept(order=order, acting_user=user)
    order_start_picking(order=order, acting_user=user)
    return order


def _url(name, order):
    return reverse(f"store:{name}", args=[order.pk])


# The board ---------------------------------------------------------------------------------


def test_board_owner_sees_columns_and_card(client, shop):
    store, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.get(reverse("store:board"))

    assert response.status_code == 200
    html = response.content.decode()
    for heading in ("New", "Picking", "Ready for pickup", "Done today", "Problems"):
        assert f'>{heading} <span class="count">' in html
    assert f'id="card-{order.pk}"' in html
    assert order.number in html
    assert html.count("No orders here.") == 4


def test_board_anonymous_is_redirected_to_login(client):
    response = client.get(reverse("store:board"))

    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/store/"


def test_board_does_not_show_another_stores_orders(client, shop):
    _, staff, _, _, other_order = shop
    client.force_login(staff)

    response = client.get(reverse("store:board"))

    assert other_order.number not in response.content.decode()


def test_board_post_is_405(client, shop):
    _, staff, _, _, _ = shop
    client.force_login(staff)

    assert client.post(reverse("store:board")).status_code == 405


def test_board_htmx_gets_fragment(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.get(reverse("store:board"), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="board"')
    assert "<html" not in html
    assert f'id="card-{order.pk}"' in html


def test_board_shows_pause_banner(client, shop):
    store, staff, _, _, _ = shop
    store.status = "paused"
    store.paused_reason = "Stocktake until 3 PM"
    store.save()
    client.force_login(staff)

    html = client.get(reverse("store:board")).content.decode()

    assert "Same-day orders are paused at Sunglass Spot." in html
    assert "Stocktake until 3 PM" in html


@pytest.mark.parametrize(
    ("status", "banner"),
    [
        ("onboarding", "Sunglass Spot is not live yet."),
        ("suspended", "Mallrun has suspended same-day orders at Sunglass Spot."),
        ("live", None),
    ],
)
def test_board_says_when_the_store_takes_no_marketplace_orders(client, shop, status, banner):
    store, staff, _, _, _ = shop
    store.status = status
    store.save()
    client.force_login(staff)

    html = client.get(reverse("store:board")).content.decode()

    banners = ["Sunglass Spot is not live yet.", "Mallrun has suspended same-day orders at Sunglass Spot."]
    assert [text for text in banners if text in html] == ([banner] if banner else [])


def test_board_times_in_mall_zone():
    mall = make_mall(time_zone="America/Phoenix")
    store = make_store(mall=mall, prep_sla_minutes=30)
    staff = make_staff(store=store).user
    placed = dt.datetime(2026, 7, 1, 20, 5, tzinfo=dt.UTC)  # 1:05 PM in Phoenix (UTC-7, no DST)
    order = make_order(store=store, placed_at=placed, deliver_in=dt.timedelta(hours=4))
    from django.test import Client

    with time_machine.travel(placed + dt.timedelta(minutes=5), tick=False):  # both deadlines are today there
        client = Client()
        client.force_login(staff)
        html = client.get(reverse("store:board")).content.decode()

    card = html[html.index(f'id="card-{order.pk}"') :]
    assert '<time datetime="2026-07-01T20:35:00+00:00" data-countdown>1:35 PM</time>' in card
    assert '<time datetime="2026-07-02T00:05:00+00:00" data-countdown>5:05 PM</time>' in card


def test_board_poll_answers_204_when_unchanged_and_200_after_change(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)
    first = client.get(reverse("store:board"), **HTMX).content.decode()
    version = first.split("?since=")[1].split('"')[0]

    unchanged = client.get(reverse("store:board"), {"since": version}, HTTP_X_MALLRUN_POLL="1", **HTMX)
    order_accept(order=order, acting_user=staff)
    changed = client.get(reverse("store:board"), {"since": version}, HTTP_X_MALLRUN_POLL="1", **HTMX)

    assert unchanged.status_code == 204
    assert unchanged.content == b""
    assert changed.status_code == 200
    assert "Accepted" in changed.content.decode()


def test_board_poll_marks_the_open_card(client, shop):
    store, staff, order, _, _ = shop
    second = make_order(store=store)
    client.force_login(staff)

    html = client.get(reverse("store:board"), {"open": order.pk}, **HTMX).content.decode()

    assert f'<article aria-current="true" class="card card-received" id="card-{order.pk}"' in html
    assert f'<article class="card card-received" id="card-{second.pk}"' in html
    assert html.count("aria-current") == 1


def test_board_poll_with_an_open_value_that_is_not_a_number_marks_no_card(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.get(reverse("store:board"), {"open": "²"}, **HTMX)

    assert response.status_code == 200
    assert f'<article class="card card-received" id="card-{order.pk}"' in response.content.decode()
    assert "aria-current" not in response.content.decode()


def test_board_poll_tells_the_open_panel_when_its_order_changed_status_elsewhere(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)
    _picking(order, staff)
    order_cancel(order=Order.objects.get(pk=order.pk), acting_user=None, reason="Shopper cancelled")

    changed = client.get(reverse("store:board"), {"open": order.pk, "open_status": "picking"}, **HTMX)
    same = client.get(reverse("store:board"), {"open": order.pk, "open_status": "cancelled"}, **HTMX)
    panel = client.get(_url("order-detail", order), {"changed": "1"}, **HTMX).content.decode()

    assert json.loads(changed["HX-Trigger"]) == {"openOrderChanged": {"order": order.pk, "status": "cancelled"}}
    assert "HX-Trigger" not in same
    assert (
        f'<p id="panel-status" data-hx-swap-oob="innerHTML">Order {order.number} was changed elsewhere: '
        "it is now cancelled.</p>"
    ) in panel
    assert (
        f'<div class="message message-success">Order {order.number} was changed elsewhere: it is now cancelled.</div>'
    ) in panel


def test_open_order_panel_refreshes_itself_when_the_board_says_its_order_changed(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    html = client.get(_url("order-detail", order), **HTMX).content.decode()

    url = _url("order-detail", order)
    assert (
        f'<section id="order-panel" class="order-panel" aria-labelledby="order-heading" data-order="{order.pk}" '
        f'data-hx-disabled-elt="find button[type=submit]" data-hx-get="{url}?changed=1" '
        'data-hx-trigger="orderStale" data-hx-swap="outerHTML">'
    ) in html
    assert f'<input type="hidden" id="open-order" name="open" value="{order.pk}" data-status="received">' in html


def test_order_page_marks_its_card_open(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    html = client.get(_url("order-detail", order)).content.decode()

    assert f'<article aria-current="true" class="card card-received" id="card-{order.pk}"' in html


# Store switching ---------------------------------------------------------------------------


def test_switch_store_stores_choice_in_session(client):
    first = make_store(name="Alpha")
    second = make_store(name="Beta")
    user = make_staff(store=first).user
    make_staff(store=second, user=user)
    second_order = make_order(store=second)
    client.force_login(user)

    response = client.post(reverse("store:switch-store"), {"store": second.pk})

    assert response.status_code == 302
    assert response.url == reverse("store:board")
    assert client.session[SESSION_STORE_KEY] == second.pk
    assert f'id="card-{second_order.pk}"' in client.get(reverse("store:board")).content.decode()


def test_switch_store_shows_the_form_to_staff_of_several_stores(client):
    first = make_store(name="Alpha")
    second = make_store(name="Beta")
    user = make_staff(store=first).user
    make_staff(store=second, user=user)
    client.force_login(user)

    html = client.get(reverse("store:board")).content.decode()

    assert 'action="/store/switch-store/"' in html
    assert f'<option value="{second.pk}">Beta · ' in html


def test_switch_store_to_another_stores_id_is_404(client, shop):
    _, staff, _, _, other_order = shop
    client.force_login(staff)

    response = client.post(reverse("store:switch-store"), {"store": other_order.store_id})

    assert response.status_code == 404
    assert SESSION_STORE_KEY not in client.session


def test_switch_store_to_an_id_too_large_for_the_database_is_404(client, shop):
    _, staff, _, _, _ = shop
    client.force_login(staff)

    response = client.post(reverse("store:switch-store"), {"store": "9" * 25})

    assert response.status_code == 404
    assert SESSION_STORE_KEY not in client.session


def test_switch_store_get_is_405(client, shop):
    _, staff, _, _, _ = shop
    client.force_login(staff)

    assert client.get(reverse("store:switch-store")).status_code == 405


# Order page --------------------------------------------------------------------------------


def test_order_detail_shows_lines_customer_first_name_and_timeline(client, shop):
    store, staff, order, _, _ = shop
    staff.first_name, staff.last_name = "Ana", "Ruiz"
    staff.save()
    client.force_login(staff)
    order_accept(order=order, acting_user=staff)

    html = client.get(_url("order-detail", order)).content.decode()

    assert "<dt>Customer</dt><dd>Jamie</dd>" in html
    assert "Doe" not in html
    assert "3355 S Las Vegas Blvd, Las Vegas, NV 89109" in html
    assert "Received from the marketplace" in html
    assert '<span class="timeline-what">Accepted</span>\n        <span class="timeline-who">by Ana Ruiz</span>' in html


def test_order_detail_other_stores_order_is_404(client, shop):
    _, staff, _, _, other_order = shop
    client.force_login(staff)

    assert client.get(_url("order-detail", other_order)).status_code == 404


def test_order_detail_post_is_405(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    assert client.post(_url("order-detail", order)).status_code == 405


def test_order_detail_htmx_gets_panel_fragment(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    html = client.get(_url("order-detail", order), **HTMX).content.decode()

    # The tab's title comes along at the fragment's root (htmx moves it to the tab).
    assert html.startswith(f'<title>Order {order.number} · Mallrun</title>\n<section id="order-panel"')
    assert "<html" not in html


def test_order_detail_anonymous_is_redirected(client, shop):
    _, _, order, _, _ = shop

    response = client.get(_url("order-detail", order))

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_order_detail_timeline_in_mall_zone(client):
    store = make_store(mall=make_mall(time_zone="America/Phoenix"))
    staff = make_staff(store=store).user
    order = make_order(store=store)
    OrderEvent.objects.filter(order=order).update(at=dt.datetime(2026, 1, 15, 18, 0, tzinfo=dt.UTC))
    client.force_login(staff)

    html = client.get(_url("order-detail", order)).content.decode()

    assert '<time datetime="2026-01-15T18:00:00+00:00">Thu Jan 15, 11:00 AM MST</time>' in html


# Actions -----------------------------------------------------------------------------------


def test_accept_moves_order_and_redirects_without_js(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.post(_url("order-accept", order))

    assert response.status_code == 302
    assert response.url == _url("order-detail", order)
    order.refresh_from_db()
    assert order.status == S.ACCEPTED


def test_accept_htmx_returns_panel_and_trigger(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.post(_url("order-accept", order), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'<title>Order {order.number} · Mallrun</title>\n<section id="order-panel"')
    assert "<html" not in html
    assert json.loads(response["HX-Trigger"]) == {"orderChanged": {"order": order.pk}}
    assert f"Order {order.number} accepted." in html


def test_accept_htmx_says_it_in_the_boards_status_region_that_stays_in_the_page(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    board = client.get(reverse("store:board")).content.decode()
    html = client.post(_url("order-accept", order), **HTMX).content.decode()

    # A status region inserted with its text is not read by screen readers: the page keeps an
    # empty one outside the swapped panel, and the answer fills it out of band.
    assert '<p id="panel-status" class="visually-hidden" role="status"></p>' in board
    assert html.rstrip().endswith(
        f'<p id="panel-status" data-hx-swap-oob="innerHTML">Order {order.number} accepted.</p>'
    )
    assert f'<div class="message message-success">Order {order.number} accepted.</div>' in html


def test_accept_twice_is_refused_with_message(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)
    order_accept(order=order, acting_user=staff)

    response = client.post(_url("order-accept", order), **HTMX)

    assert response.status_code == 409
    assert f"Order {order.number} is accepted already." in response.content.decode()
    # Someone else got there first: the board catches up at once rather than at its next poll.
    assert json.loads(response["HX-Trigger"]) == {"orderChanged": {"order": order.pk}}


def test_accept_refusal_without_js_renders_page_with_message(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)
    order_accept(order=order, acting_user=staff)

    response = client.post(_url("order-accept", order))

    assert response.status_code == 409
    assert "is accepted already." in response.content.decode()


@pytest.mark.parametrize(
    "name",
    [
        "order-accept",
        "order-start-picking",
        "order-record-picked",
        "order-mark-ready",
        "order-report-problem",
        "order-send-rest",
        "order-reject",
    ],
)
def test_actions_other_stores_order_is_404_and_get_is_405(client, shop, name):
    _, staff, order, _, other_order = shop
    client.force_login(staff)

    refused = client.post(_url(name, other_order), {"reason": "x", "package_count": 1})
    wrong_method = client.get(_url(name, order))

    assert refused.status_code == 404
    assert wrong_method.status_code == 405
    other_order.refresh_from_db()
    assert other_order.status == S.RECEIVED


@pytest.mark.parametrize("name", ["order-detail", "order-accept", "order-reject"])
def test_htmx_action_on_an_order_the_person_no_longer_staffs_reloads_the_page(client, shop, name):
    # Taken off the team while the board was open: htmx swaps nothing for a 404, so the tap
    # seemed to do nothing; the page now reloads and shows what the person may still see.
    store, staff, order, _, _ = shop
    client.force_login(staff)
    staff.store_memberships.filter(store=store).update(is_active=False)

    response = (client.get if name == "order-detail" else client.post)(_url(name, order), {"reason": "x"}, **HTMX)
    plain = client.post(_url("order-accept", order))

    assert (response.status_code, response.headers.get("HX-Refresh")) == (404, "true")
    assert (plain.status_code, plain.headers.get("HX-Refresh")) == (404, None)
    order.refresh_from_db()
    assert order.status == S.RECEIVED


@pytest.mark.parametrize("name", ["order-accept", "order-reject"])
def test_actions_anonymous_is_redirected(client, shop, name):
    _, _, order, _, _ = shop

    response = client.post(_url(name, order), {"reason": "x"})

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_start_picking_moves_order(client, shop):
    _, staff, order, _, _ = shop
    order_accept(order=order, acting_user=staff)
    client.force_login(staff)

    response = client.post(_url("order-start-picking", order), **HTMX)

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == S.PICKING


def test_start_picking_from_received_is_refused(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.post(_url("order-start-picking", order), **HTMX)

    assert response.status_code == 409
    assert f"Order {order.number} is new and not accepted yet, so it cannot be started." in response.content.decode()


def test_record_picked_saves_quantities(client):
    store = make_store()
    staff = make_staff(store=store).user
    listing = make_listing(seller=store.seller, title="Aviator sunglasses")
    make_stock(store=store, listing=listing, on_hand=5)
    order = _picking(make_order(store=store, lines=[(listing, 3)]), staff)
    line = order.lines.get()
    client.force_login(staff)

    response = client.post(_url("order-record-picked", order), {f"line_{line.pk}": "2"}, **HTMX)

    assert response.status_code == 200
    line.refresh_from_db()
    assert line.picked == 2
    assert response["HX-Trigger"] == json.dumps({"orderChanged": {"order": order.pk}})


def test_record_picked_over_quantity_is_form_error(client):
    store = make_store()
    staff = make_staff(store=store).user
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=5)
    order = _picking(make_order(store=store, lines=[(listing, 3)]), staff)
    line = order.lines.get()
    client.force_login(staff)

    response = client.post(_url("order-record-picked", order), {f"line_{line.pk}": "4"}, **HTMX)

    assert response.status_code == 422
    assert f"Enter how many of {listing.title} are in hand: 0 to 3." in response.content.decode()
    line.refresh_from_db()
    assert line.picked == 0


def test_record_picked_after_picking_is_refused(client, shop):
    _, staff, order, _, _ = shop
    line = order.lines.get()
    client.force_login(staff)

    response = client.post(_url("order-record-picked", order), {f"line_{line.pk}": "1"}, **HTMX)

    assert response.status_code == 409
    assert (
        f"Order {order.number} is new and not accepted yet: picked quantities are recorded only while it is being "
        "picked." in response.content.decode()
    )


def test_record_picked_after_a_marketplace_cancel_says_the_order_is_cancelled(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    line = order.lines.get()
    client.force_login(staff)
    order_cancel(
        order=Order.objects.get(pk=order.pk), acting_user=None, reason="Shopper cancelled", actor_label="marketplace"
    )

    response = client.post(_url("order-record-picked", order), {f"line_{line.pk}": "1"}, **HTMX)

    assert response.status_code == 409
    assert (
        f'<div class="message message-error" role="alert">Order {order.number} was cancelled by marketplace '
        "(Shopper cancelled): nothing more is done for it.</div>"
    ) in response.content.decode()
    assert order.lines.get().picked == 0


def test_mark_ready_creates_packages_and_redirects_to_labels(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    client.force_login(staff)

    response = client.post(_url("order-mark-ready", order), {"package_count": "3"})

    order.refresh_from_db()
    assert order.status == S.READY
    assert Package.objects.filter(order=order).count() == 3
    assert response.status_code == 302
    assert response.url == reverse("store:order-labels", args=[order.pk])


def test_mark_ready_htmx_links_to_labels(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    client.force_login(staff)

    response = client.post(_url("order-mark-ready", order), {"package_count": "2"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="{reverse("store:order-labels", args=[order.pk])}">Print labels</a>' in html
    for code in Package.objects.filter(order=order).values_list("label_code", flat=True):
        assert code in html


@pytest.mark.parametrize("count", ["0", "21", "two", ""])
def test_mark_ready_bad_package_count_is_form_error(client, shop, count):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    client.force_login(staff)

    response = client.post(_url("order-mark-ready", order), {"package_count": count}, **HTMX)

    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.content.decode()
    assert Package.objects.filter(order=order).count() == 0


def test_mark_ready_with_unpicked_items_is_refused(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    client.force_login(staff)

    response = client.post(_url("order-mark-ready", order), {"package_count": "1"}, **HTMX)

    assert response.status_code == 422
    listing = order.lines.get().listing
    assert f"{listing.title} ({listing.seller_sku}) has 0 of 1 picked: record the picked quantities" in (
        response.content.decode()
    )
    order.refresh_from_db()
    assert order.status == S.PICKING


def test_report_problem_moves_order_to_short(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    client.force_login(staff)

    response = client.post(_url("order-report-problem", order), {"reason": "Size M missing"}, **HTMX)

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == S.SHORT
    assert order.problem_reason == "Size M missing"


def _picking_three(staff_store):
    store, staff = staff_store
    listing = make_listing(seller=store.seller, title="Aviator sunglasses")
    make_stock(store=store, listing=listing, on_hand=5)
    order = _picking(make_order(store=store, lines=[(listing, 3)]), staff)
    return order, order.lines.get()


def test_report_problem_records_the_picked_quantities_typed_with_it(client, shop):
    store, staff, _, _, _ = shop
    order, line = _picking_three((store, staff))
    client.force_login(staff)

    response = client.post(
        _url("order-report-problem", order), {"reason": "One pair is missing", f"line_{line.pk}": "2"}, **HTMX
    )

    order.refresh_from_db()
    line.refresh_from_db()
    stock = Stock.objects.get(store=store, listing=line.listing)
    assert response.status_code == 200
    assert (order.status, line.picked, line.reserved_quantity) == (S.SHORT, 2, 2)
    assert (stock.on_hand, stock.reserved) == (4, 2)


def test_mark_ready_records_the_picked_quantities_typed_with_it(client, shop):
    store, staff, _, _, _ = shop
    order, line = _picking_three((store, staff))
    client.force_login(staff)

    response = client.post(_url("order-mark-ready", order), {"package_count": "1", f"line_{line.pk}": "3"}, **HTMX)

    order.refresh_from_db()
    line.refresh_from_db()
    assert response.status_code == 200
    assert (order.status, line.picked, order.packages.count()) == (S.READY, 3, 1)


def test_mark_ready_with_a_picked_quantity_over_the_ordered_is_a_form_error_and_changes_nothing(client, shop):
    store, staff, _, _, _ = shop
    order, line = _picking_three((store, staff))
    client.force_login(staff)

    response = client.post(_url("order-mark-ready", order), {"package_count": "1", f"line_{line.pk}": "5"}, **HTMX)

    html = response.content.decode()
    order.refresh_from_db()
    line.refresh_from_db()
    assert response.status_code == 422
    assert (
        f'<span class="errorlist" id="id_line_{line.pk}-error">Enter how many of {line.listing.title} are in hand: '
        "0 to 3.</span>" in html
    )
    assert 'value="5"' in html
    assert (order.status, line.picked, order.packages.count()) == (S.PICKING, 0, 0)


def test_picking_panel_sends_the_picked_quantities_with_mark_ready_and_report_problem(client, shop):
    store, staff, _, _, _ = shop
    order, line = _picking_three((store, staff))
    client.force_login(staff)

    html = client.get(_url("order-detail", order), **HTMX).content.decode()

    assert f'class="picked-form" id="picked-{order.pk}">' in html
    for name in ("order-mark-ready", "order-report-problem"):
        url = _url(name, order)
        assert (
            f'<form method="post" action="{url}" data-hx-post="{url}" data-hx-target="#order-panel" '
            f'data-hx-swap="outerHTML" data-hx-include="#picked-{order.pk}" novalidate'
        ) in html
    reject = _url("order-reject", order)
    assert f'data-hx-post="{reject}" data-hx-target="#order-panel" data-hx-swap="outerHTML" data-hx-confirm=' in html


def test_report_problem_blank_reason_is_form_error(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    client.force_login(staff)

    response = client.post(_url("order-report-problem", order), {"reason": "   "}, **HTMX)

    assert response.status_code == 422
    assert "This field is required." in response.content.decode()


def test_report_problem_when_all_picked_is_refused(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    client.force_login(staff)

    response = client.post(_url("order-report-problem", order), {"reason": "Torn"}, **HTMX)

    assert response.status_code == 422
    assert "Every item is picked: record the picked quantity of the missing item first." in response.content.decode()


def _short_order(store, staff, *, allows_partial=True):
    first = make_listing(seller=store.seller)
    second = make_listing(seller=store.seller)
    make_stock(store=store, listing=first, on_hand=5)
    make_stock(store=store, listing=second, on_hand=5)
    order = _picking(make_order(store=store, lines=[(first, 1), (second, 1)], allows_partial=allows_partial), staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get(listing=first).pk: 1})
    from orders.services import order_report_short

    return order_report_short(order=order, acting_user=staff, reason="Second item missing")


def test_send_rest_makes_short_order_ready(client, shop):
    store, staff, _, _, _ = shop
    order = _short_order(store, staff)
    client.force_login(staff)

    response = client.post(_url("order-send-rest", order), {"package_count": "1"})

    order.refresh_from_db()
    assert order.status == S.READY
    assert response.url == reverse("store:order-labels", args=[order.pk])


def test_short_order_with_nothing_picked_offers_only_reject(client, shop):
    store, staff, _, _, _ = shop
    some = _short_order(store, staff)
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=5)
    none = _picking(make_order(store=store, lines=[(listing, 1)]), staff)
    from orders.services import order_report_short

    none = order_report_short(order=none, acting_user=staff, reason="Nothing on the shelf")
    client.force_login(staff)

    with_some = client.get(_url("order-detail", some), **HTMX).content.decode()
    with_none = client.get(_url("order-detail", none), **HTMX).content.decode()

    assert _url("order-send-rest", some) in with_some
    assert _url("order-send-rest", none) not in with_none
    assert _url("order-reject", none) in with_none


def test_send_rest_refused_when_partial_not_allowed(client, shop):
    store, staff, _, _, _ = shop
    order = _short_order(store, staff, allows_partial=False)
    client.force_login(staff)

    response = client.post(_url("order-send-rest", order), {"package_count": "1"}, **HTMX)

    assert response.status_code == 422
    assert (
        f"The marketplace does not allow partial delivery for order {order.number}: reject it instead."
        in response.content.decode()
    )


def test_reject_records_reason(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.post(_url("order-reject", order), {"reason": "Damaged stock"}, **HTMX)

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == S.REJECTED
    assert "Damaged stock" in response.content.decode()


def test_reject_ready_order_is_refused(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    order_mark_ready(order=order, acting_user=staff, package_count=1)
    client.force_login(staff)

    response = client.post(_url("order-reject", order), {"reason": "Changed mind"}, **HTMX)

    assert response.status_code == 409
    assert f"Order {order.number} is ready for pickup, so it cannot be rejected." in response.content.decode()


# Search ------------------------------------------------------------------------------------


def test_search_single_order_number_prefix_goes_to_order(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.get(reverse("store:search"), {"q": order.number[:9]})

    assert response.status_code == 302
    assert response.url == _url("order-detail", order)


def test_search_label_code_is_case_insensitive(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    order_mark_ready(order=order, acting_user=staff, package_count=1)
    code = Package.objects.get(order=order).label_code
    client.force_login(staff)

    response = client.get(reverse("store:search"), {"q": code.lower()})

    assert response.url == _url("order-detail", order)


def test_search_lists_several_hits(client, shop):
    store, staff, order, _, _ = shop
    second = make_order(store=store, marketplace_order_id="113-7777777-0000002")
    third = make_order(store=store, marketplace_order_id="113-7777777-0000003")
    client.force_login(staff)

    response = client.get(reverse("store:search"), {"q": "113-7777777"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "2 orders found." in html
    assert second.number in html and third.number in html
    assert order.number not in html


def test_search_finds_the_last_digits_a_customers_name_or_an_item_with_when_it_was_placed(client, shop):
    store, staff, order, _, other_order = shop
    listing = order.lines.get().listing
    client.force_login(staff)

    ending = client.get(reverse("store:search"), {"q": order.number[-5:]})
    name = client.get(reverse("store:search"), {"q": "jamie"})
    item = client.get(reverse("store:search"), {"q": listing.title[2:8].upper()})
    two_letters = client.get(reverse("store:search"), {"q": "ja"})
    make_order(store=store, customer_name="Jamie Roe", marketplace_order_id="113-1111111-0000009")
    listed = client.get(reverse("store:search"), {"q": "Jamie"}).content.decode()

    assert ending.url == name.url == item.url == _url("order-detail", order)
    assert "No order of your stores matches" in two_letters.content.decode()
    assert "2 orders found." in listed
    assert f"{order.number}</a> · Jamie Doe · Received · placed {local_datetime(order.placed_at, store)}" in listed
    assert other_order.number not in listed


def test_search_does_not_find_other_stores_orders(client, shop):
    _, staff, _, _, other_order = shop
    client.force_login(staff)

    response = client.get(reverse("store:search"), {"q": other_order.number})

    assert response.status_code == 200
    assert f"No order of your stores matches “{other_order.number}”." in response.content.decode()


def test_search_htmx_gets_results_fragment(client, shop):
    _, staff, _, _, _ = shop
    client.force_login(staff)

    html = client.get(reverse("store:search"), {"q": "nothing"}, **HTMX).content.decode()

    assert html.lstrip().startswith('<div id="search-results"')
    assert "<html" not in html


def test_search_post_is_405(client, shop):
    _, staff, _, _, _ = shop
    client.force_login(staff)

    assert client.post(reverse("store:search")).status_code == 405


def test_search_anonymous_is_redirected(client):
    response = client.get(reverse("store:search"), {"q": "x"})

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_done_today_column_uses_mall_date(client):
    store = make_store(mall=make_mall(time_zone="America/Phoenix"))
    staff = make_staff(store=store).user
    today_order = make_order(store=store)
    yesterday_order = make_order(store=store)
    for order in (today_order, yesterday_order):
        Order.objects.filter(pk=order.pk).update(status=S.DELIVERED)
    client.force_login(staff)
    # One frozen instant for the test's midnight and the board's: on the running clock, a run that
    # straddles midnight in Phoenix would put the board on the next day.
    with time_machine.travel(timezone.now(), tick=False):
        local_midnight = timezone.now().astimezone(store.mall.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        Order.objects.filter(pk=yesterday_order.pk).update(status_changed_at=local_midnight - dt.timedelta(seconds=1))
        Order.objects.filter(pk=today_order.pk).update(status_changed_at=local_midnight)

        html = client.get(reverse("store:board")).content.decode()

    assert f'id="card-{today_order.pk}"' in html
    assert f'id="card-{yesterday_order.pk}"' not in html


# Returns ------------------------------------------------------------------------------------


def _returning_order(store):
    from drivers.tests.factories import make_ready_order
    from orders.delivery import order_mark_undeliverable, order_pick_up

    order = make_ready_order(store=store)
    order_pick_up(order=order, acting_user=None)
    order_mark_undeliverable(order=order, acting_user=None, reason="Nobody at the door")
    return order


def test_order_returning_staff_confirms_packages_are_back(client, shop):
    store, staff, _, _, _ = shop
    order = _returning_order(store)
    client.force_login(staff)

    panel = client.get(_url("order-detail", order)).content.decode()
    board = client.get(reverse("store:board")).content.decode()
    response = client.post(_url("order-confirm-returned", order), headers={"HX-Request": "true"})

    order.refresh_from_db()
    assert "Packages are back" in panel
    # Its card counts down to no deadline: the delivery failed and the package is coming back.
    card = board.split(f'id="card-{order.pk}"')[1].split("</article>")[0]
    assert "Deliver by" not in card
    assert response.status_code == 200
    assert f"Return of order {order.number} confirmed." in response.content.decode()
    assert order.status == OrderStatus.RETURNED
    assert order.events.last().actor == staff


def test_order_timeline_names_the_handoff_return_and_delay_in_words(client, shop):
    from drivers.tests.factories import make_ready_order
    from orders.delivery import order_confirm_returned, order_deliver, order_pick_up, orders_flag_delayed

    store, staff, _, _, _ = shop
    returned = _returning_order(store)
    orders_flag_delayed(order_ids=[returned.pk], reason="No driver took the route")
    order_confirm_returned(order=returned, acting_user=staff)
    delivered = make_ready_order(store=store)
    order_pick_up(order=delivered, acting_user=None)
    order_deliver(order=delivered, acting_user=None)
    client.force_login(staff)

    returned_html = client.get(_url("order-detail", returned), **HTMX).content.decode()
    delivered_html = client.get(_url("order-detail", delivered), **HTMX).content.decode()

    def said(html):
        return [part.split("</span>")[0] for part in html.split('<span class="timeline-what">')[1:]]

    assert said(returned_html)[-5:] == [
        "Handed to the driver",
        "Could not be delivered",
        "Returning to the store",
        "Delivery delayed",
        "Returned to the store",
    ]
    assert said(delivered_html)[-2:] == ["Handed to the driver", "Delivered"]
    assert {f"order.{status}" for status in S.values} - set(_EVENT_LABELS) == set()


def test_order_confirm_returned_refused_unless_returning(client, shop):
    _, staff, order, _, _ = shop
    client.force_login(staff)

    response = client.post(_url("order-confirm-returned", order), headers={"HX-Request": "true"})

    order.refresh_from_db()
    assert response.status_code == 409
    assert order.status == OrderStatus.RECEIVED
    assert (
        f"Order {order.number} is new and not accepted yet, so it cannot be confirmed as returned."
        in response.content.decode()
    )
    assert "Packages are back" not in response.content.decode()


def test_order_confirm_returned_of_other_store_is_404(client, shop):
    store, _, _, other_staff, _ = shop
    order = _returning_order(store)
    client.force_login(other_staff)

    response = client.post(_url("order-confirm-returned", order))

    order.refresh_from_db()
    assert (response.status_code, order.status) == (404, OrderStatus.RETURNING)


# Two tabs: the order page showed one store's order, the session was switched to another since ----


@pytest.mark.parametrize(
    ("name", "data", "status"), [("order-accept", {}, S.ACCEPTED), ("order-reject", {"reason": "Sold out"}, S.REJECTED)]
)
def test_order_action_acts_on_the_order_the_page_showed_after_a_switch_in_another_tab(client, shop, name, data, status):
    store, staff, order, _, _ = shop
    second = make_store(seller=store.seller, mall=store.mall, name="Sunglass Spot — Level 2")
    make_staff(store=second, user=staff)
    second_order = make_order(store=second)
    client.force_login(staff)
    client.post(reverse("store:switch-store"), {"store": store.pk})
    page = client.get(_url("order-detail", order)).content.decode()
    client.post(reverse("store:switch-store"), {"store": second.pk})  # another tab

    assert f'action="{_url(name, order)}"' in page
    response = client.post(_url(name, order), data, **HTMX)

    assert response.status_code == 200
    order.refresh_from_db()
    second_order.refresh_from_db()
    assert (order.status, second_order.status) == (status, S.RECEIVED)


def test_order_cancelled_after_packing_tells_staff_to_keep_and_unpack_it_and_offers_no_labels(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    order_mark_ready(order=order, acting_user=staff, package_count=2)
    codes = ", ".join(Package.objects.filter(order=order).order_by("pk").values_list("label_code", flat=True))
    order_cancel(
        order=Order.objects.get(pk=order.pk), acting_user=None, reason="Shopper cancelled", actor_label="marketplace"
    )
    client.force_login(staff)

    html = client.get(reverse("store:order-detail", args=[order.pk]), **HTMX).content.decode()

    assert (
        '<p class="message message-warning">This order is cancelled: hand nothing over to a driver for it. Take its '
        f"packages ({codes}) off the pickup shelf and put the items back on the shelf. The stock it held is free "
        "again.</p>"
    ) in html
    assert "Print labels" not in html


def test_order_cancelled_while_picking_tells_staff_to_put_the_picked_items_back(client, shop):
    _, staff, order, _, _ = shop
    _picking(order, staff)
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})
    order_cancel(
        order=Order.objects.get(pk=order.pk), acting_user=None, reason="Shopper cancelled", actor_label="marketplace"
    )
    client.force_login(staff)

    html = client.get(reverse("store:order-detail", args=[order.pk]), **HTMX).content.decode()

    assert "This order is cancelled: hand nothing over to a driver for it. Put the items picked for it back" in html
