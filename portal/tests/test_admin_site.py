"""The admin is Mallrun's: its name and icon on every page, for operators and seller managers."""

import pytest
from django.test import Client

from portal.tests.factories import make_listing, make_seller, make_seller_manager

pytestmark = pytest.mark.django_db
ICON = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'


def test_admin_pages_carry_mallruns_name_and_icon_for_a_seller_manager():
    seller = make_seller()
    listing = make_listing(seller=seller)
    client = Client()
    client.force_login(make_seller_manager(seller=seller).user)

    index = client.get("/admin/").content.decode()
    change = client.get(f"/admin/retailers/listing/{listing.pk}/change/").content.decode()

    assert "<title>Administration | Mallrun admin</title>" in index
    assert '<div id="site-name"><a href="/admin/">Mallrun admin</a></div>' in index
    assert "Django" not in index
    # The change form adds its own head (scripts, media) after the icon.
    assert ICON in index and ICON in change
    assert change.index(ICON) < change.index("jsi18n")


def test_admin_login_page_is_mallruns():
    body = Client().get("/admin/login/").content.decode()

    assert "<title>Log in | Mallrun admin</title>" in body
    assert "Django administration" not in body


def _operator_client() -> Client:
    from portal.tests.factories import make_user

    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("year", ["99999999999999999999", "9999", "0"])
def test_admin_date_hierarchy_with_an_impossible_year_is_an_invalid_lookup_not_a_500(year):
    client = _operator_client()

    response = client.get(f"/admin/orders/order/?placed_at__year={year}")

    assert (response.status_code, response["Location"]) == (302, "/admin/orders/order/?e=1")


@pytest.mark.parametrize("selected", [["99999999999999999999"], ["abc"], ["-1", "x"]])
def test_admin_action_on_ids_that_are_in_no_list_changes_nothing_and_says_so(selected):
    from orders.models import Order
    from portal.tests.factories import make_order, make_store

    order = make_order(store=make_store())
    client = _operator_client()

    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_selected", "_selected_action": selected, "index": "0", "select_across": "0"},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [
        "None of the selected items is in this list: nothing was changed."
    ]
    assert Order.objects.get(pk=order.pk).status == order.status


def test_admin_action_keeps_the_selected_ids_that_are_in_the_list():
    from orders.models import Order
    from portal.tests.factories import make_order, make_store

    order = make_order(store=make_store())
    client = _operator_client()

    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_selected", "_selected_action": ["abc", str(order.pk)], "index": "0", "confirm": "yes"},
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [f"Cancelled 1: {order.number}."]
    assert Order.objects.get(pk=order.pk).status == "cancelled"
