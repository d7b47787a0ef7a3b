from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Sum
from django.test import Client
from django.urls import reverse

from orders.lifecycle import OrderStatus
from orders.models import Order, OrderEvent, OrderLine, Package
from retailers.applications import application_approve
from retailers.models import (
    ApplicationStatus,
    EligibilityResult,
    Listing,
    Mall,
    Market,
    Seller,
    SellerMembership,
    StaffRole,
    Stock,
    Store,
    StoreApplication,
    StoreHours,
    StoreMembership,
    StoreStatus,
)

pytestmark = pytest.mark.django_db

USERNAMES = ("ops", "seller", "staff-fs-1", "staff-fs-2", "manager-fs-1")
MODELS = (Market, Mall, Seller, Store, StoreHours, Listing, Stock, Order, OrderLine, Package, OrderEvent)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The seed hashes the demo password for every account; the slow production hasher would
    # make each test here take many seconds without testing anything more.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _snapshot() -> dict[str, list]:
    ids = {model.__name__: list(model.objects.order_by("pk").values_list("pk", flat=True)) for model in MODELS}
    ids["store fields"] = list(Store.objects.order_by("pk").values_list("name", "status", "same_day_cutoff"))
    ids["stock levels"] = list(Stock.objects.order_by("pk").values_list("on_hand", "reserved"))
    ids["order statuses"] = list(Order.objects.order_by("pk").values_list("marketplace_order_id", "status"))
    return ids


def test_seed_demo_creates_the_demo_world():
    output = _seed()

    counts = {model.__name__: model.objects.count() for model in (Market, Mall, Seller, Store, Listing, Stock, Order)}
    assert counts == {
        "Market": 4,
        "Mall": 4,
        "Seller": 5,
        "Store": 18,
        "Listing": 257,
        "Stock": 927,
        "Order": 126,
    }
    assert "126 orders" in output
    assert min(Seller.objects.annotate(n=Count("listings")).values_list("n", flat=True)) == 50


def test_seed_demo_malls_have_four_to_six_stores_from_three_sellers_and_sunset_everywhere():
    _seed()

    malls = Mall.objects.annotate(stores_n=Count("stores"), sellers_n=Count("stores__seller", distinct=True))

    assert all(4 <= mall.stores_n <= 6 and mall.sellers_n >= 3 for mall in malls)
    sunset = Seller.objects.get(marketplace_seller_id="A2SUNSETAPPAREL", name="Sunset Apparel")
    assert set(Mall.objects.filter(stores__seller=sunset)) == set(Mall.objects.all())


def test_seed_demo_second_run_keeps_counts_and_ids():
    _seed()
    before = _snapshot()

    output = _seed()

    assert _snapshot() == before
    assert "Created 0 new orders" in output


def test_seed_demo_loads_the_four_markets_with_zones_and_coordinates():
    _seed()

    malls = {
        (mall.market.name, mall.name, mall.slug, mall.time_zone, mall.delivery_radius_miles)
        for mall in Mall.objects.select_related("market")
    }

    assert malls == {
        ("Las Vegas", "Fashion Show", "fashion-show", "America/Los_Angeles", 10),
        ("Chandler", "Chandler Fashion Center", "chandler-fashion-center", "America/Phoenix", 10),
        ("Tysons", "Tysons Corner Center", "tysons-corner", "America/New_York", 10),
        ("Friendswood", "Baybrook Mall", "baybrook", "America/Chicago", 10),
    }
    fashion_show = Mall.objects.get(slug="fashion-show")
    assert (round(float(fashion_show.latitude), 2), round(float(fashion_show.longitude), 2)) == (36.13, -115.17)
    assert all(mall.parking_instructions and mall.entrance_instructions for mall in Mall.objects.all())


def test_seed_demo_opens_exactly_one_store_around_the_clock_per_mall():
    _seed()

    around_the_clock = {}
    for store in Store.objects.select_related("mall").prefetch_related("hours"):
        hours = list(store.hours.all())
        assert len(hours) == 7
        if all(row.around_the_clock for row in hours):
            around_the_clock.setdefault(store.mall.slug, []).append(store.name)

    assert around_the_clock == {
        "fashion-show": ["Sunset Apparel Fashion Show"],
        "chandler-fashion-center": ["Sunset Apparel Chandler"],
        "tysons-corner": ["Sunset Apparel Tysons"],
        "baybrook": ["Sunset Apparel Baybrook"],
    }


def test_seed_demo_has_orders_in_every_status_at_both_demo_staff_stores():
    _seed()
    stores = {
        username: StoreMembership.objects.get(user__username=username).store
        for username in ("staff-fs-1", "staff-fs-2")
    }

    for store in stores.values():
        assert set(Order.objects.filter(store=store).values_list("status", flat=True)) == set(OrderStatus.values)
    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    assert Order.objects.filter(marketplace_order_id="DEMO-FS1-0001").exists()


def test_seed_demo_every_status_change_has_an_event():
    _seed()

    orders = Order.objects.prefetch_related("events")
    last_events = {
        order.pk: max(order.events.all(), key=lambda event: (event.at, event.pk)).to_status for order in orders
    }

    assert last_events == dict(Order.objects.values_list("pk", "status"))
    demo_events = set(OrderEvent.objects.filter(actor_label="demo").values_list("to_status", flat=True))
    assert demo_events == {"undeliverable"}


def test_seed_demo_reserved_stock_matches_open_order_lines():
    _seed()

    reserved = {
        (row["order__store_id"], row["listing_id"]): row["total"]
        for row in OrderLine.objects.filter(reserved_quantity__gt=0)
        .values("order__store_id", "listing_id")
        .annotate(total=Sum("reserved_quantity"))
    }

    stock = {(row.store_id, row.listing_id): row.reserved for row in Stock.objects.filter(reserved__gt=0)}
    assert stock == reserved


def test_seed_demo_includes_the_api_contract_listing_in_stock_at_fashion_show():
    _seed()

    listing = Listing.objects.get(seller__marketplace_seller_id="A2SUNSETAPPAREL", seller_sku="SA-TEE-001")
    stock = Stock.objects.get(listing=listing, store__mall__slug="fashion-show")

    assert listing.title == "Classic Crew Tee, White"
    assert stock.available >= 10
    assert Listing.objects.filter(hazmat=True).count() >= 5
    assert Listing.objects.filter(size_class="oversize").count() >= 5


def test_seed_demo_accounts_log_in_with_demo_password():
    _seed()
    users = get_user_model().objects.filter(username__in=USERNAMES)

    logged_in = {}
    for user in users:
        client = Client()
        response = client.post(reverse("login"), {"username": user.username, "password": "mallrun-demo"})
        logged_in[user.username] = (response.status_code, client.session.get("_auth_user_id"))

    assert logged_in == {user.username: (302, str(user.pk)) for user in users}
    assert len(logged_in) == 5


def test_seed_demo_accounts_have_their_roles():
    _seed()
    users = {user.username: user for user in get_user_model().objects.all()}

    staff_1 = StoreMembership.objects.get(user=users["staff-fs-1"])
    staff_2 = StoreMembership.objects.get(user=users["staff-fs-2"])
    manager = StoreMembership.objects.get(user=users["manager-fs-1"])

    assert (users["ops"].is_superuser, users["seller"].is_staff, users["seller"].is_superuser) == (True, True, False)
    assert list(SellerMembership.objects.values_list("user__username", "seller__name")) == [
        ("seller", "Sunset Apparel")
    ]
    assert (staff_1.role, staff_2.role, manager.role) == (StaffRole.ASSOCIATE, StaffRole.ASSOCIATE, StaffRole.MANAGER)
    assert staff_1.store.mall.slug == staff_2.store.mall.slug == "fashion-show"
    assert staff_1.store.seller != staff_2.store.seller
    assert manager.store == staff_1.store


@pytest.mark.django_db
def test_seed_demo_computes_eligibility_for_every_stocked_listing_and_mall():
    _seed()

    stocked = set(Stock.objects.values_list("listing_id", "store__mall_id").distinct())
    computed = set(EligibilityResult.objects.values_list("listing_id", "mall_id"))
    assert computed == stocked


def test_seed_demo_leaves_two_store_applications_for_review_and_a_rerun_keeps_decided_ones():
    _seed()
    waiting = list(
        StoreApplication.objects.order_by("store_name").values_list(
            "store_name", "mall__slug", "marketplace_seller_id", "status"
        )
    )
    assert waiting == [
        ("Canyon Candle Fashion Show", "fashion-show", "A6CANYONCANDLE", ApplicationStatus.APPLIED),
        ("Gadget Garage Chandler", "chandler-fashion-center", "A4GADGETGARAGE", ApplicationStatus.APPLIED),
    ]

    gadget = StoreApplication.objects.get(store_name="Gadget Garage Chandler")
    # Gadget Garage already sells in other malls: its new store joins that seller.
    application_approve(
        application=gadget, acting_user=get_user_model().objects.get(username="ops"), existing_seller_confirmed=True
    )
    _seed()

    statuses = dict(StoreApplication.objects.values_list("store_name", "status"))
    assert statuses == {
        "Canyon Candle Fashion Show": ApplicationStatus.APPLIED,
        "Gadget Garage Chandler": ApplicationStatus.APPROVED,
    }
    store = Store.objects.get(name="Gadget Garage Chandler")
    assert (store.status, store.seller.marketplace_seller_id, store.unit) == (
        StoreStatus.ONBOARDING,
        "A4GADGETGARAGE",
        "1186",
    )
