import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.lifecycle import OrderStatus
from orders.models import Order, OrderEvent
from orders.services import order_accept, order_cancel, order_mark_ready, order_record_picked, order_start_picking
from portal.tests.factories import make_mall, make_order, make_seller, make_seller_manager, make_store, make_user
from retailers.models import Stock

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


@pytest.fixture
def world():
    own, other = make_seller(name="Own"), make_seller(name="Other")
    own_store = make_store(seller=own, mall=make_mall(name="Mall A"), name="Own A")
    other_store = make_store(seller=other, mall=make_mall(name="Mall B"), name="Other B")
    own_orders = [make_order(store=own_store, marketplace_order_id=f"OWN-{n}") for n in (1, 2)]
    other_order = make_order(store=other_store, marketplace_order_id="OTHER-1")
    return {
        "own_store": own_store,
        "other_store": other_store,
        "own_orders": own_orders,
        "other_order": other_order,
        "manager": make_seller_manager(seller=own).user,
        "operator": make_user(is_staff=True, is_superuser=True),
    }


def _ready(order: Order, user) -> Order:
    order_accept(order=order, acting_user=user)
    order_start_picking(order=order, acting_user=user)
    order_record_picked(order=order, acting_user=user, picked={line.pk: line.quantity for line in order.lines.all()})
    return order_mark_ready(order=order, acting_user=user, package_count=1)


def test_order_changelist_manager_sees_exactly_own_orders(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert set(response.context["cl"].result_list) == set(world["own_orders"])
    assert response.context["cl"].result_count == 2


def test_order_changelist_operator_sees_every_order(client, world):
    client.force_login(world["operator"])

    response = client.get(reverse(CHANGELIST))

    assert set(response.context["cl"].result_list) == {*world["own_orders"], world["other_order"]}


@pytest.mark.parametrize("view", ["change", "history"])
def test_order_pages_of_another_seller_answer_404(client, world, view):
    client.force_login(world["manager"])
    other_order = world["other_order"]

    response = client.get(reverse(f"admin:orders_order_{view}", args=[other_order.pk]))

    assert response.status_code == 404
    assert Order.objects.filter(pk=other_order.pk).exists()


def test_order_change_page_own_order_is_read_only_with_lines_and_events(client, world):
    client.force_login(world["manager"])
    order = world["own_orders"][0]

    response = client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert [formset.formset.prefix for formset in response.context["inline_admin_formsets"]] == [
        "lines",
        "packages",
        "events",
    ]
    assert b"order.received" in response.content


def test_order_search_by_label_code_finds_the_order(client, world):
    client.force_login(world["operator"])
    order = _ready(world["own_orders"][1], world["operator"])
    code = order.packages.get().label_code

    response = client.get(reverse(CHANGELIST), {"q": code.lower()})

    assert list(response.context["cl"].result_list) == [order]


def test_order_list_filter_offers_only_own_stores(client, world):
    client.force_login(world["manager"])
    second = make_store(seller=world["own_store"].seller, mall=world["own_store"].mall, name="Own A2")
    make_order(store=second, marketplace_order_id="OWN-3")

    response = client.get(reverse(CHANGELIST))

    spec = next(spec for spec in response.context["cl"].filter_specs if spec.field_path == "store")
    assert [label for _pk, label in spec.lookup_choices] == ["Own A", "Own A2"]


def test_cancel_action_by_manager_cancels_only_own_orders(client, world):
    client.force_login(world["manager"])
    own, other = world["own_orders"][0], world["other_order"]

    confirm_page = client.post(
        reverse(CHANGELIST), {"action": "cancel_selected", "_selected_action": [own.pk, other.pk]}
    )
    response = client.post(
        reverse(CHANGELIST),
        {"action": "cancel_selected", "_selected_action": [own.pk, other.pk], "confirm": "yes", "reason": ""},
    )

    # The first post only asks, for the manager's own order alone.
    assert confirm_page.status_code == 200
    assert [order.pk for order in confirm_page.context["orders"]] == [own.pk]
    assert response.status_code == 302
    own.refresh_from_db()
    other.refresh_from_db()
    assert (own.status, other.status) == (OrderStatus.CANCELLED, OrderStatus.RECEIVED)
    event = OrderEvent.objects.get(order=own, type="order.cancelled")
    assert (event.actor, event.reason) == (world["manager"], "Cancelled by the seller in the admin.")
    assert Stock.objects.get(store=own.store, listing=own.lines.get().listing).reserved == 0
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Cancelled 1: OWN-1."]


def test_cancel_action_reports_each_refused_order(client, world):
    client.force_login(world["operator"])
    first, second = world["own_orders"]
    order_accept(order=first, acting_user=world["operator"])
    order_cancel(order=second, acting_user=world["operator"], reason="Customer changed their mind.")

    response = client.post(
        reverse(CHANGELIST),
        {"action": "cancel_selected", "_selected_action": [first.pk, second.pk], "confirm": "yes"},
    )

    first.refresh_from_db()
    assert first.status == OrderStatus.CANCELLED
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Cancelled 1: OWN-1.",
        "Not cancelled: Order OWN-2 was cancelled already.",
    ]


def test_order_admin_offers_no_add_or_delete(client, world):
    client.force_login(world["operator"])

    add = client.get(reverse("admin:orders_order_add"))
    delete = client.get(reverse("admin:orders_order_delete", args=[world["other_order"].pk]))

    assert (add.status_code, delete.status_code) == (403, 403)


def test_staff_user_without_seller_membership_cannot_see_orders(client, world):
    client.force_login(make_user(is_staff=True))

    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 403


def _query_count(client, url: str) -> int:
    client.get(url)  # warm-up: the first request of a session writes the session row
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_order_changelist_query_count_does_not_grow_with_rows(client, world):
    client.force_login(world["manager"])
    url = reverse(CHANGELIST)
    few = _query_count(client, url)
    for n in range(10):
        make_order(store=world["own_store"], marketplace_order_id=f"MORE-{n}")

    many = _query_count(client, url)

    assert many == few


def test_order_admin_page_and_list_show_its_times_in_the_malls_zone(client):
    import datetime as dt

    store = make_store(mall=make_mall(name="Chandler", time_zone="America/Phoenix"))
    placed = dt.datetime(2026, 11, 24, 3, 43, tzinfo=dt.UTC)
    order = make_order(store=store, placed_at=placed, marketplace_order_id="ZONE-1")
    client.force_login(make_user(is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    listing = client.get(reverse(CHANGELIST)).content.decode()

    assert "Nov. 23, 2026, 8:43 p.m. MST" in page  # 03:43 UTC in Phoenix
    assert "Nov. 24, 2026, 3:43 a.m. UTC" not in page
    assert "Nov. 23, 2026, 8:43 p.m. MST" in listing
    assert "Nov. 24, 2026, 3:43 a.m. UTC" not in listing


def test_cancel_action_asks_why_and_gives_the_reason_typed(client, world):
    client.force_login(world["operator"])
    order = world["own_orders"][0]
    selection = {"action": "cancel_selected", "_selected_action": [order.pk]}

    page = client.post(reverse(CHANGELIST), selection)
    too_long = client.post(reverse(CHANGELIST), {**selection, "confirm": "yes", "reason": "x" * 301})
    done = client.post(reverse(CHANGELIST), {**selection, "confirm": "yes", "reason": "Shopper called support"})

    assert "Cancel 1 order? Reserved stock goes back on the shelf" in page.content.decode()
    assert "OWN-1: received at Own A (Mall A)" in page.content.decode()
    assert too_long.status_code == 422
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert OrderEvent.objects.get(order=order, type="order.cancelled").reason == "Shopper called support"
