import datetime as dt

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import board
from orders.board import board_version, build_board
from orders.models import Order
from orders.services import order_accept
from portal.tests.factories import make_listing, make_mall, make_order, make_staff, make_stock, make_store

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def _store_with_orders(count: int):
    store = make_store()
    staff = make_staff(store=store).user
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=count)
    orders = [make_order(store=store, lines=[(listing, 1)]) for _ in range(count)]
    return store, staff, orders


def _board_queries(client, staff, **params) -> int:
    client.force_login(staff)
    client.get(reverse("store:board"))  # warms the session and the login bookkeeping
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("store:board"), params, **HTMX)
    assert response.status_code == 200
    return len(queries)


def test_board_same_query_count_with_5_and_200_orders(client):
    _, few_staff, _ = _store_with_orders(5)
    _, many_staff, many = _store_with_orders(200)

    few = _board_queries(client, few_staff)
    client.logout()
    lots = _board_queries(client, many_staff)

    assert few == lots
    assert Order.objects.filter(store=many[0].store).count() == 200


def test_board_page_same_query_count_with_5_and_200_orders(client):
    _, few_staff, _ = _store_with_orders(5)
    _, many_staff, _ = _store_with_orders(200)

    def page_queries(staff):
        client.force_login(staff)
        client.get(reverse("store:board"))
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("store:board")).status_code == 200
        client.logout()
        return len(queries)

    assert page_queries(few_staff) == page_queries(many_staff)


def test_board_renders_only_changed_cards():
    store, staff, orders = _store_with_orders(20)
    build_board(store)
    order_accept(order=orders[7], acting_user=staff)

    with CaptureQueriesContext(connection) as queries:
        result = build_board(store)

    card_fetches = [q["sql"] for q in queries.captured_queries if '"orders_order"."id" IN' in q["sql"]]
    assert card_fetches == [card_fetches[0]]
    assert f'"orders_order"."id" IN ({orders[7].pk})' in card_fetches[0]
    new_column = result.columns[0]
    assert new_column.count == 20
    assert 'class="card-status">Accepted<' in new_column.html


def test_board_unchanged_rebuild_reads_no_order_rows():
    store, _, _ = _store_with_orders(10)
    build_board(store)

    with CaptureQueriesContext(connection) as queries:
        build_board(store)

    # The version and the light rows; card HTML comes from the cache.
    assert len(queries) == 2


def test_board_version_changes_with_order_store_and_date():
    store, staff, orders = _store_with_orders(2)
    noon = dt.datetime(2026, 7, 1, 19, 0, tzinfo=dt.UTC)
    before = board_version(store, now=noon)

    order_accept(order=orders[0], acting_user=staff)
    after_order = board_version(store, now=noon)
    store.save()
    after_store = board_version(store, now=noon)
    next_day = board_version(store, now=noon + dt.timedelta(days=1))

    assert len({before, after_order, after_store, next_day}) == 4
    assert board_version(store, now=noon) == after_store


def test_board_version_uses_mall_local_date():
    store = make_store(mall=make_mall(time_zone="America/Phoenix"))
    # 06:30 UTC on 2 July is still 1 July, 11:30 PM, in Phoenix.
    version = board_version(store, now=dt.datetime(2026, 7, 2, 6, 30, tzinfo=dt.UTC))

    assert version.endswith("-20260701")


def test_board_cards_hold_no_relative_times():
    store, _, orders = _store_with_orders(1)

    html = board.render_cards(orders, store)[orders[0].pk]

    assert "data-countdown" in html
    assert "min left" not in html
    assert "ago" not in html


def test_board_poll_204_costs_one_query_beyond_the_user(client):
    store, staff, _ = _store_with_orders(3)
    client.force_login(staff)
    client.get(reverse("store:board"))
    version = board_version(store)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("store:board"), {"since": version}, HTTP_X_MALLRUN_POLL="1", **HTMX)

    assert response.status_code == 204
    user_query, state_query = (q["sql"] for q in queries.captured_queries)
    assert '"auth_user"' in user_query
    assert f"WHERE sm.user_id = {staff.pk} AND sm.store_id = {store.pk} AND sm.is_active" in state_query


def test_board_poll_with_version_of_a_store_not_staffed_reloads_the_page_and_shows_nothing_of_it(client):
    store, staff, _ = _store_with_orders(1)
    other, _, other_orders = _store_with_orders(1)
    client.force_login(staff)
    client.get(reverse("store:board"))

    response = client.get(reverse("store:board"), {"since": board_version(other)}, **HTMX)

    assert (response.status_code, response["HX-Refresh"]) == (404, "true")
    assert f"card-{other_orders[0].pk}" not in response.content.decode()


def test_board_poll_after_membership_ends_reloads_the_page(client):
    store, staff, _ = _store_with_orders(1)
    client.force_login(staff)
    client.get(reverse("store:board"))
    version = board_version(store)
    staff.store_memberships.update(is_active=False)

    response = client.get(reverse("store:board"), {"since": version}, **HTMX)

    assert (response.status_code, response["HX-Refresh"]) == (404, "true")


def test_board_card_names_the_day_of_a_deadline_that_is_not_today_in_the_malls_zone():
    store = make_store(mall=make_mall(time_zone="America/Phoenix"))
    # 22:30 in Phoenix on Tuesday; the deadline is 00:29 on Wednesday there, and prep is due tonight.
    now = dt.datetime(2026, 11, 25, 5, 30, tzinfo=dt.UTC)
    with time_machine.travel(now, tick=False):
        order = make_order(store=store, deliver_in=dt.timedelta(hours=1, minutes=59))
        Order.objects.filter(pk=order.pk).update(prep_due_at=now + dt.timedelta(minutes=20))
        order.refresh_from_db()
        html = board.render_cards([order], store)[order.pk]
    with time_machine.travel(now + dt.timedelta(hours=2), tick=False):
        next_day = board.render_cards([order], store)[order.pk]

    assert ">12:29 AM tomorrow</time>" in html
    assert ">10:50 PM</time>" in html
    assert ">12:29 AM</time>" in next_day  # after midnight the same card is drawn again: today now
    assert ">Tue 10:50 PM</time>" in next_day
