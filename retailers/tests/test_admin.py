import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.tests.factories import (
    make_listing,
    make_mall,
    make_seller,
    make_seller_manager,
    make_stock,
    make_store,
    make_user,
)
from retailers.models import Listing, Stock, Store, StoreEvent, StoreStatus
from retailers.tests.admin_forms import store_change_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Two sellers in two malls; `own` is managed by `manager`, `other` by nobody here."""
    mall_a, mall_b, mall_c = make_mall(name="Mall A"), make_mall(name="Mall B"), make_mall(name="Mall C")
    own, other = make_seller(name="Own"), make_seller(name="Other")
    own_store_a = make_store(seller=own, mall=mall_a, name="Own A")
    own_store_b = make_store(seller=own, mall=mall_b, name="Own B")
    other_store = make_store(seller=other, mall=mall_c, name="Other C")
    own_listing = make_listing(seller=own, seller_sku="OWN-1", title="Own tee")
    other_listing = make_listing(seller=other, seller_sku="OTH-1", title="Other tee")
    own_stock = make_stock(store=own_store_a, listing=own_listing, on_hand=5, reserved=2)
    other_stock = make_stock(store=other_store, listing=other_listing, on_hand=7)
    manager = make_seller_manager(seller=own).user
    operator = make_user(is_staff=True, is_superuser=True)
    return {
        "malls": (mall_a, mall_b, mall_c),
        "own": own,
        "other": other,
        "own_stores": [own_store_a, own_store_b],
        "other_store": other_store,
        "own_listing": own_listing,
        "other_listing": other_listing,
        "own_stock": own_stock,
        "other_stock": other_stock,
        "manager": manager,
        "operator": operator,
    }


def _changelist(client, model: str, **params):
    return client.get(reverse(f"admin:retailers_{model}_changelist"), params)


def test_store_changelist_manager_sees_exactly_own_stores(client, world):
    client.force_login(world["manager"])

    response = _changelist(client, "store")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == world["own_stores"]


def test_store_changelist_operator_sees_every_store(client, world):
    client.force_login(world["operator"])

    response = _changelist(client, "store")

    assert list(response.context["cl"].result_list) == [world["other_store"], *world["own_stores"]]


def test_listing_and_stock_changelists_manager_sees_exactly_own_rows(client, world):
    client.force_login(world["manager"])

    listings = _changelist(client, "listing")
    stock = _changelist(client, "stock")
    sellers = _changelist(client, "seller")

    assert list(listings.context["cl"].result_list) == [world["own_listing"]]
    assert list(stock.context["cl"].result_list) == [world["own_stock"]]
    assert list(sellers.context["cl"].result_list) == [world["own"]]


@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_store_object_pages_of_another_seller_answer_404(client, world, view):
    client.force_login(world["manager"])
    other_store = world["other_store"]

    response = client.get(reverse(f"admin:retailers_store_{view}", args=[other_store.pk]))

    assert response.status_code == 404
    assert Store.objects.filter(pk=other_store.pk).exists()


def test_stock_and_listing_change_pages_of_another_seller_answer_404(client, world):
    client.force_login(world["manager"])

    stock = client.get(reverse("admin:retailers_stock_change", args=[world["other_stock"].pk]))
    listing = client.get(reverse("admin:retailers_listing_change", args=[world["other_listing"].pk]))
    seller = client.get(reverse("admin:retailers_seller_change", args=[world["other"].pk]))

    assert (stock.status_code, listing.status_code, seller.status_code) == (404, 404, 404)


def test_store_change_page_own_store_answers_200(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse("admin:retailers_store_change", args=[world["own_stores"][0].pk]))

    assert response.status_code == 200


def test_operator_only_admins_refuse_seller_managers(client, world):
    client.force_login(world["manager"])

    malls = _changelist(client, "mall")
    memberships = _changelist(client, "sellermembership")
    seller_add = client.get(reverse("admin:retailers_seller_add"))

    assert (malls.status_code, memberships.status_code, seller_add.status_code) == (403, 403, 403)


def test_staff_user_without_seller_membership_sees_no_seller_admin(client, world):
    client.force_login(make_user(is_staff=True))

    response = _changelist(client, "store")

    assert response.status_code == 403


def test_stock_add_form_choices_exclude_other_sellers(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse("admin:retailers_stock_add"))

    fields = response.context["adminform"].form.fields
    assert list(fields["store"].queryset) == world["own_stores"]
    assert list(fields["listing"].queryset) == [world["own_listing"]]


def test_store_add_form_seller_choice_is_only_own_seller(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse("admin:retailers_store_add"))

    form = response.context["adminform"].form
    assert list(form.fields["seller"].queryset) == [world["own"]]
    assert form.initial["seller"] == world["own"].pk


def test_listing_add_by_manager_for_another_seller_is_refused(client, world):
    client.force_login(world["manager"])
    data = {"seller": world["other"].pk, "seller_sku": "NEW-1", "title": "New", "category": "apparel"}
    data |= {"weight_grams": 100, "size_class": "small"}

    response = client.post(reverse("admin:retailers_listing_add"), data)

    assert response.status_code == 200
    assert "seller" in response.context["adminform"].form.errors
    assert not Listing.objects.filter(seller_sku="NEW-1").exists()


def test_listing_add_by_manager_creates_it_for_own_seller(client, world):
    client.force_login(world["manager"])
    data = {"seller": world["own"].pk, "seller_sku": "NEW-1", "title": "New", "category": "apparel"}
    data |= {"weight_grams": 100, "size_class": "small"}

    response = client.post(reverse("admin:retailers_listing_add"), data)

    assert response.status_code == 302
    assert Listing.objects.get(seller_sku="NEW-1").seller == world["own"]


def test_stock_add_with_listing_of_another_seller_shows_form_error(client, world):
    client.force_login(world["operator"])
    data = {"store": world["own_stores"][1].pk, "listing": world["other_listing"].pk, "on_hand": 3}

    response = client.post(reverse("admin:retailers_stock_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["listing"] == ["OTH-1 is not sold by Own, the seller of Own B."]
    assert Stock.objects.count() == 2


@pytest.mark.parametrize(
    ("model_name", "field_name", "own_key"),
    [("stock", "store", "own_stores"), ("stock", "listing", "own_listing")],
)
def test_autocomplete_returns_only_own_rows(client, world, model_name, field_name, own_key):
    client.force_login(world["manager"])
    params = {"app_label": "retailers", "model_name": model_name, "field_name": field_name, "term": ""}

    response = client.get(reverse("admin:autocomplete"), params)

    own = world[own_key] if isinstance(world[own_key], list) else [world[own_key]]
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(row.pk) for row in own]


def test_autocomplete_search_for_another_sellers_store_finds_nothing(client, world):
    client.force_login(world["manager"])
    params = {"app_label": "retailers", "model_name": "stock", "field_name": "store", "term": "Other"}

    response = client.get(reverse("admin:autocomplete"), params)

    assert response.json()["results"] == []


def test_autocomplete_of_operator_only_model_refuses_manager(client, world):
    client.force_login(world["manager"])
    params = {"app_label": "retailers", "model_name": "store", "field_name": "mall", "term": ""}

    response = client.get(reverse("admin:autocomplete"), params)

    assert response.status_code == 403


def _filter_choices(response, field_path: str) -> list[str]:
    spec = next(spec for spec in response.context["cl"].filter_specs if spec.field_path == field_path)
    return [label for _pk, label in spec.lookup_choices]


def test_stock_list_filters_offer_only_own_stores_and_malls(client, world):
    client.force_login(world["manager"])
    make_stock(store=world["own_stores"][1], listing=world["own_listing"])

    response = _changelist(client, "stock")

    assert _filter_choices(response, "store") == ["Own A", "Own B"]
    assert _filter_choices(response, "store__mall") == ["Mall A", "Mall B"]


def test_stock_list_filters_offer_operators_everything(client, world):
    client.force_login(world["operator"])

    response = _changelist(client, "stock")

    assert _filter_choices(response, "store") == ["Other C", "Own A", "Own B"]
    assert _filter_choices(response, "store__mall") == ["Mall A", "Mall B", "Mall C"]


def test_stock_filter_by_another_sellers_store_lists_nothing(client, world):
    client.force_login(world["manager"])

    response = _changelist(client, "stock", store__id__exact=world["other_store"].pk)

    assert list(response.context["cl"].result_list) == []


def test_delete_action_by_manager_skips_other_sellers_listings(client, world):
    client.force_login(world["manager"])
    spare = make_listing(seller=world["own"], seller_sku="OWN-2")
    data = {"action": "delete_selected", "_selected_action": [spare.pk, world["other_listing"].pk], "post": "yes"}

    response = client.post(reverse("admin:retailers_listing_changelist"), data)

    assert response.status_code == 302
    assert list(Listing.objects.order_by("seller_sku")) == [world["other_listing"], world["own_listing"]]


def test_stock_changelist_edits_on_hand_and_refuses_below_reserved(client, world):
    client.force_login(world["manager"])
    stock = world["own_stock"]
    base = {"form-TOTAL_FORMS": 1, "form-INITIAL_FORMS": 1, "form-0-id": stock.pk, "_save": "Save"}

    refused = client.post(reverse("admin:retailers_stock_changelist"), {**base, "form-0-on_hand": 1})
    accepted = client.post(reverse("admin:retailers_stock_changelist"), {**base, "form-0-on_hand": 9})

    assert refused.status_code == 200
    assert refused.context["cl"].formset.errors[0]["on_hand"] == [
        "2 units are reserved by open orders: on hand cannot be below that."
    ]
    assert accepted.status_code == 302
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (9, 2)
    event = StoreEvent.objects.get(type="stock.changed")
    assert (event.store, event.actor) == (stock.store, world["manager"])
    assert event.data == {"sku": "OWN-1", "from": 5, "to": 9}


def test_stock_add_by_manager_creates_row_through_service(client, world):
    client.force_login(world["manager"])
    data = {"store": world["own_stores"][1].pk, "listing": world["own_listing"].pk, "on_hand": 4}

    response = client.post(reverse("admin:retailers_stock_add"), data)

    assert response.status_code == 302
    stock = Stock.objects.get(store=world["own_stores"][1])
    assert (stock.listing, stock.on_hand, stock.reserved) == (world["own_listing"], 4, 0)
    assert StoreEvent.objects.filter(store=world["own_stores"][1], type="stock.changed").count() == 1


def test_store_pause_in_admin_goes_through_service_and_records_event(client, world):
    client.force_login(world["manager"])
    store = world["own_stores"][0]

    response = client.post(
        reverse("admin:retailers_store_change", args=[store.pk]),
        store_change_data(store, status=StoreStatus.PAUSED, paused_reason="Inventory count"),
    )

    assert response.status_code == 302
    store.refresh_from_db()
    assert (store.status, store.paused_reason, store.paused_by) == ("paused", "Inventory count", world["manager"])
    assert list(StoreEvent.objects.values_list("type", "reason")) == [("store.paused", "Inventory count")]


def test_store_onboarding_status_change_by_manager_is_refused(client, world):
    client.force_login(world["manager"])
    store = world["own_stores"][0]
    Store.objects.filter(pk=store.pk).update(status=StoreStatus.ONBOARDING)
    store.refresh_from_db()

    response = client.post(
        reverse("admin:retailers_store_change", args=[store.pk]), store_change_data(store, status=StoreStatus.LIVE)
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["status"] == [
        "Only an operator can change the onboarding status; you can pause or resume."
    ]
    store.refresh_from_db()
    assert store.status == StoreStatus.ONBOARDING


def _query_count(client, url: str) -> int:
    client.get(url)  # warm-up: the first request of a session writes the session row
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("model", ["store", "listing", "stock"])
def test_changelist_query_count_does_not_grow_with_rows(client, world, model):
    client.force_login(world["manager"])
    url = reverse(f"admin:retailers_{model}_changelist")
    few = _query_count(client, url)
    for n in range(10):
        store = make_store(seller=world["own"], mall=world["malls"][n % 3], name=f"Extra {n}")
        make_stock(store=store, listing=make_listing(seller=world["own"], seller_sku=f"MORE-{n}"))

    many = _query_count(client, url)

    assert many == few


def test_store_resume_in_admin_goes_through_service(client, world):
    client.force_login(world["operator"])
    store = world["own_stores"][0]
    Store.objects.filter(pk=store.pk).update(status=StoreStatus.PAUSED, paused_reason="Stocktake")
    store.refresh_from_db()

    response = client.post(
        reverse("admin:retailers_store_change", args=[store.pk]), store_change_data(store, status=StoreStatus.LIVE)
    )

    assert response.status_code == 302
    store.refresh_from_db()
    assert (store.status, store.paused_reason, store.paused_at) == (StoreStatus.LIVE, "", None)
    assert list(StoreEvent.objects.values_list("type", "actor")) == [("store.resumed", world["operator"].pk)]


def test_store_settings_and_hours_in_admin_go_through_service_with_one_event(client, world):
    client.force_login(world["manager"])
    store = world["own_stores"][0]
    data = store_change_data(store, same_day_cutoff="16:00", prep_sla_minutes=45)
    monday = store.hours.get(weekday=0)
    sunday = store.hours.get(weekday=6)
    index = {row.pk: i for i, row in enumerate(store.hours.all())}
    data |= {f"hours-{index[monday.pk]}-opens_at": "09:00", f"hours-{index[monday.pk]}-closes_at": "20:00"}
    data |= {f"hours-{index[sunday.pk]}-DELETE": "on"}

    response = client.post(reverse("admin:retailers_store_change", args=[store.pk]), data)

    assert response.status_code == 302
    store.refresh_from_db()
    assert (store.same_day_cutoff.hour, store.prep_sla_minutes) == (16, 45)
    assert list(store.hours.values_list("weekday", flat=True)) == [0, 1, 2, 3, 4, 5]
    assert store.hours.get(weekday=0).__str__() == "Monday 09:00–20:00"
    event = StoreEvent.objects.get()
    assert (event.type, event.actor) == ("store.settings_changed", world["manager"])
    assert event.data == {
        "same_day_cutoff": "16:00:00",
        "prep_sla_minutes": "45",
        "hours.0": "09:00-20:00",
        "hours.6": "closed",
    }


@pytest.mark.parametrize("who", ["manager", "operator"])
def test_store_change_form_cannot_move_a_store_to_another_mall(client, world, who):
    # A store is one seller's shop in one mall: its orders, routes and eligibility belong there.
    client.force_login(world[who])
    store = world["own_stores"][0]
    other_mall = world["malls"][2]

    response = client.post(
        reverse("admin:retailers_store_change", args=[store.pk]), store_change_data(store, mall=other_mall.pk)
    )

    assert response.status_code == 302
    store.refresh_from_db()
    assert store.mall == world["malls"][0]


def test_store_capacity_change_in_admin_is_recorded_and_requests_a_recompute(client, world):
    from retailers.models import EligibilityRequest, EligibilityRequestKind

    client.force_login(world["manager"])
    store = world["own_stores"][0]
    EligibilityRequest.objects.all().delete()

    response = client.post(
        reverse("admin:retailers_store_change", args=[store.pk]), store_change_data(store, hourly_capacity=20)
    )

    assert response.status_code == 302
    store.refresh_from_db()
    assert store.hourly_capacity == 20
    event = StoreEvent.objects.get()
    assert (event.type, event.actor, event.data) == (
        "store.settings_changed",
        world["manager"],
        {"hourly_capacity": "20"},
    )
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [
        (EligibilityRequestKind.STORE, store.pk)
    ]


def test_store_change_page_shows_pause_and_update_times_in_the_malls_time_zone(client, world):
    import datetime as dt

    store = world["own_stores"][0]
    store.mall.time_zone = "America/Los_Angeles"
    store.mall.save()
    at = dt.datetime(2026, 11, 24, 3, 30, tzinfo=dt.UTC)
    Store.objects.filter(pk=store.pk).update(
        status=StoreStatus.PAUSED, paused_reason="Stocktake", paused_at=at, updated_at=at
    )
    client.force_login(world["manager"])

    html = client.get(reverse("admin:retailers_store_change", args=[store.pk])).content.decode()

    assert html.count("Mon Nov 23 2026, 7:30 PM PST") == 2  # paused since, last updated


def test_store_add_page_answers_200_for_a_seller_manager(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse("admin:retailers_store_add"))

    assert response.status_code == 200


def test_operator_making_someone_a_seller_manager_gives_them_the_admin(client, world):
    person = make_user("sam")  # a store login, not a staff user yet
    client.force_login(world["operator"])

    response = client.post(
        reverse("admin:retailers_sellermembership_add"), {"user": person.pk, "seller": world["own"].pk}
    )

    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.is_staff, person.is_superuser) == (True, False)
    client.force_login(person)
    stores = client.get(reverse("admin:retailers_store_changelist"))
    assert stores.status_code == 200
    assert sorted(store.name for store in stores.context["cl"].result_list) == ["Own A", "Own B"]


def _store_add_data(client, **fields) -> dict:
    """The add page's inline management forms (no rows), plus the store's fields."""
    page = client.get(reverse("admin:retailers_store_add"))
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
        data |= {f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    defaults = {"name": "Added Store", "unit": "L9-900", "prep_sla_minutes": 20, "hourly_capacity": 10}
    defaults |= {"same_day_cutoff": "17:00", "pickup_instructions": ""}
    return data | defaults | fields


def test_store_added_by_an_operator_cannot_start_live_and_nothing_is_saved(client, world):
    client.force_login(world["operator"])
    data = _store_add_data(client, seller=world["own"].pk, mall=world["malls"][2].pk, status="live")

    response = client.post(reverse("admin:retailers_store_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["status"] == [
        "A new store starts as applied, approved or onboarding: it goes live with Go live once its onboarding "
        "checklist is complete."
    ]
    assert not Store.objects.filter(name="Added Store").exists()


def test_store_added_by_an_operator_starts_its_history_with_who_added_it(client, world):
    client.force_login(world["operator"])
    data = _store_add_data(client, seller=world["own"].pk, mall=world["malls"][2].pk, status="onboarding")

    response = client.post(reverse("admin:retailers_store_add"), data)

    assert response.status_code == 302
    store = Store.objects.get(name="Added Store")
    assert list(store.events.values_list("type", "to_status", "actor")) == [
        ("store.added", "onboarding", world["operator"].pk)
    ]
