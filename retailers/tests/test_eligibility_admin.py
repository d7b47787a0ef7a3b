"""Eligibility in the admin: seller managers see their own results with reasons, hints,
filters, search and CSV export; operators see everything."""

import csv
import datetime as dt
import importlib
import io

import pytest
import time_machine
from django.apps import apps
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
from retailers.eligibility_requests import eligibility_requests_run
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityRequest, EligibilityResult, Listing, ProgramLimits, Stock, StoreStatus
from retailers.models import EligibilityRequestKind as Kind

pytestmark = pytest.mark.django_db
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=dt.UTC)
CHANGELIST = "admin:retailers_eligibilityresult_changelist"


@pytest.fixture
def world():
    fashion_show = make_mall(name="Fashion Show", slug="fashion-show")
    other_mall = make_mall(name="Tysons")
    own, other = make_seller(name="Sunset", marketplace_seller_id="A2SUNSET"), make_seller(name="Other")
    store = make_store(seller=own, mall=fashion_show, name="Sunset Apparel — Fashion Show")
    paused = make_store(
        seller=own, mall=other_mall, name="Sunset — Tysons", status=StoreStatus.PAUSED, paused_reason="Stocktake"
    )
    other_store = make_store(seller=other, mall=other_mall, name="Other — Tysons")
    tee = make_listing(seller=own, seller_sku="SA-TEE-001", title="Tee")
    cap = make_listing(seller=own, seller_sku="SA-CAP-002", title="Cap")
    theirs = make_listing(seller=other, seller_sku="OT-1", title="Theirs")
    make_stock(store=store, listing=tee, on_hand=3)
    make_stock(store=paused, listing=tee, on_hand=3)
    make_stock(store=other_store, listing=theirs, on_hand=3)
    eligibility_recompute(now=NOON_LA, driver_markets={fashion_show.market_id, other_mall.market_id})
    return {
        "manager": make_seller_manager(seller=own).user,
        "operator": make_user(is_staff=True, is_superuser=True),
        "tee": tee,
        "cap": cap,
        "theirs": theirs,
        "store": store,
        "paused": paused,
        "fashion_show": fashion_show,
    }


def _rows(response) -> list[tuple[str, str]]:
    return sorted((r.listing.seller_sku, r.mall.name) for r in response.context["cl"].result_list)


def test_eligibility_changelist_manager_sees_only_own_results_with_reasons_and_hints(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert _rows(response) == [
        ("SA-CAP-002", "Fashion Show"),
        ("SA-CAP-002", "Tysons"),
        ("SA-TEE-001", "Fashion Show"),
        ("SA-TEE-001", "Tysons"),
    ]
    content = response.content.decode()
    assert "restock 1 unit at Sunset Apparel — Fashion Show" in content
    assert "resume same-day at Sunset — Tysons" in content
    assert "Store paused" in content
    assert "OT-1" not in content


def test_eligibility_changelist_operator_sees_every_result(client, world):
    client.force_login(world["operator"])

    response = client.get(reverse(CHANGELIST))

    assert len(response.context["cl"].result_list) == 5


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"eligible__exact": "1"}, [("SA-TEE-001", "Fashion Show")]),
        ({"reason": "out_of_stock"}, [("SA-CAP-002", "Fashion Show"), ("SA-CAP-002", "Tysons")]),
        ({"reason": "store_paused"}, [("SA-CAP-002", "Tysons"), ("SA-TEE-001", "Tysons")]),
        ({"q": "tee"}, [("SA-TEE-001", "Fashion Show"), ("SA-TEE-001", "Tysons")]),
    ],
)
def test_eligibility_changelist_filters_and_search(client, world, params, expected):
    client.force_login(world["manager"])

    response = client.get(reverse(CHANGELIST), params)

    assert _rows(response) == expected


def test_eligibility_changelist_mall_and_store_filters(client, world):
    client.force_login(world["manager"])

    by_mall = client.get(reverse(CHANGELIST), {"mall__id__exact": world["fashion_show"].pk})
    by_store = client.get(reverse(CHANGELIST), {"store": world["paused"].pk})

    assert _rows(by_mall) == [("SA-CAP-002", "Fashion Show"), ("SA-TEE-001", "Fashion Show")]
    assert _rows(by_store) == [("SA-CAP-002", "Tysons"), ("SA-TEE-001", "Tysons")]


def test_eligibility_result_of_another_seller_is_404_for_a_manager(client, world):
    client.force_login(world["manager"])
    theirs = EligibilityResult.objects.get(listing=world["theirs"])

    response = client.get(reverse("admin:retailers_eligibilityresult_change", args=[theirs.pk]))

    assert response.status_code == 404


def test_eligibility_result_page_finds_the_row_through_the_pair_its_id_packs(client, world):
    client.force_login(world["operator"])
    own = EligibilityResult.objects.get(listing=world["tee"], mall=world["fashion_show"])
    assert own.pk == world["fashion_show"].pk * 2**32 + world["tee"].pk

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:retailers_eligibilityresult_change", args=[own.pk]))

    assert page.status_code == 200
    assert page.context["original"] == own
    lookup = next(q["sql"] for q in queries if 'FROM "retailers_eligibilityresult"' in q["sql"])
    assert f'"retailers_eligibilityresult"."listing_id" = {world["tee"].pk}' in lookup
    assert f'"retailers_eligibilityresult"."mall_id" = {world["fashion_show"].pk}' in lookup


@pytest.mark.parametrize("object_id", ["abc", "١٢", "99999999999999999999999", "4294967296000"])
def test_eligibility_result_page_for_an_id_that_is_no_result_is_404(client, world, object_id):
    client.force_login(world["operator"])

    response = client.get(reverse("admin:retailers_eligibilityresult_change", args=[object_id]))

    assert response.status_code == 404


def test_eligibility_results_are_read_only_for_managers(client, world):
    client.force_login(world["manager"])
    own = EligibilityResult.objects.get(listing=world["tee"], mall=world["fashion_show"])

    add = client.get(reverse("admin:retailers_eligibilityresult_add"))
    delete = client.post(reverse("admin:retailers_eligibilityresult_delete", args=[own.pk]), {"post": "yes"})
    view = client.get(reverse("admin:retailers_eligibilityresult_change", args=[own.pk]))

    assert (add.status_code, delete.status_code, view.status_code) == (403, 403, 200)
    assert EligibilityResult.objects.filter(pk=own.pk).exists()


def test_eligibility_csv_export_has_only_own_rows_even_when_others_are_posted(client, world):
    client.force_login(world["manager"])
    ids = list(EligibilityResult.objects.values_list("pk", flat=True))

    response = client.post(reverse(CHANGELIST), {"action": "export_csv", "_selected_action": ids})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "seller_id",
        "sku",
        "title",
        "mall",
        "eligible",
        "reasons",
        "hint",
        "eligible_until",
        "computed_at",
    ]
    assert sorted((row[1], row[3], row[4], row[5]) for row in rows[1:]) == [
        ("SA-CAP-002", "fashion-show", "no", "out_of_stock"),
        ("SA-CAP-002", world["paused"].mall.slug, "no", "store_paused out_of_stock"),
        ("SA-TEE-001", "fashion-show", "yes", ""),
        ("SA-TEE-001", world["paused"].mall.slug, "no", "store_paused"),
    ]
    assert [row[7] for row in rows[1:] if row[1] == "SA-TEE-001" and row[3] == "fashion-show"] == [
        "2026-11-18T17:00:00-08:00"
    ]


def test_listing_page_explains_each_mall(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse("admin:retailers_listing_change", args=[world["cap"].pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert "same-day eligibility per mall" in content.lower()
    assert "restock 1 unit at Sunset Apparel — Fashion Show" in content
    assert "Store paused; Out of stock" in content


def _listing_change_data(client, listing, **changes) -> dict:
    """The listing's change form as the admin shows it, with `changes`, ready to post."""
    page = client.get(reverse("admin:retailers_listing_change", args=[listing.pk]))
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value not in (None, False)}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data |= {management.add_prefix(name): management[name].value() for name in management.fields}
    data.update(changes)
    return data


def test_listing_change_in_admin_recomputes_its_eligibility(client, world):
    client.force_login(world["manager"])
    data = _listing_change_data(client, world["tee"], hazmat="on")

    response = client.post(reverse("admin:retailers_listing_change", args=[world["tee"].pk]), data)

    assert response.status_code == 302
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [(Kind.LISTING, world["tee"].pk)]
    eligibility_requests_run()
    result = EligibilityResult.objects.get(listing=world["tee"], mall=world["fashion_show"])
    assert "hazmat" in result.reasons


def test_listing_added_in_admin_gets_its_eligibility_rows(client, world):
    client.force_login(world["manager"])
    data = {"seller": world["tee"].seller_id, "seller_sku": "SA-NEW-003", "title": "New", "category": "apparel"}
    data |= {"weight_grams": 100, "size_class": "small"}

    response = client.post(reverse("admin:retailers_listing_add"), data)
    eligibility_requests_run()

    assert response.status_code == 302
    new = Listing.objects.get(seller_sku="SA-NEW-003")
    assert sorted(EligibilityResult.objects.filter(listing=new).values_list("mall__name", flat=True)) == [
        "Fashion Show",
        "Tysons",
    ]


def test_eligibility_csv_export_gives_times_in_the_malls_local_time(client, world):
    chandler = make_mall(name="Chandler", slug="chandler", time_zone="America/Phoenix")
    make_store(seller=world["tee"].seller, mall=chandler)
    eligibility_recompute(now=NOON_LA, driver_markets={chandler.market_id})
    client.force_login(world["manager"])
    ids = list(EligibilityResult.objects.filter(listing=world["cap"]).values_list("pk", flat=True))

    response = client.post(reverse(CHANGELIST), {"action": "export_csv", "_selected_action": ids})

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert sorted((row[3], row[8]) for row in rows[1:]) == [
        ("chandler", "2026-11-18T13:00:00-07:00"),
        ("fashion-show", "2026-11-18T12:00:00-08:00"),
        (world["paused"].mall.slug, "2026-11-18T12:00:00-08:00"),
    ]


def test_listing_page_names_each_mall_row_in_words_not_ids(client, world):
    client.force_login(world["manager"])

    response = client.get(reverse("admin:retailers_listing_change", args=[world["cap"].pk]))

    content = response.content.decode()
    rows = [str(form.original) for form in response.context["inline_admin_formsets"][0]]
    assert rows == ["SA-CAP-002 in Fashion Show", "SA-CAP-002 in Tysons"]
    assert "[&#x27;" not in content


def test_eligibility_pages_do_not_link_a_manager_to_mall_pages_they_may_not_open(client, world):
    client.force_login(world["manager"])
    own = EligibilityResult.objects.get(listing=world["tee"], mall=world["fashion_show"])
    mall_page = reverse("admin:retailers_mall_change", args=[world["fashion_show"].pk])

    listing = client.get(reverse("admin:retailers_listing_change", args=[world["tee"].pk])).content.decode()
    result = client.get(reverse("admin:retailers_eligibilityresult_change", args=[own.pk])).content.decode()

    assert client.get(mall_page).status_code == 403
    assert (f'href="{mall_page}"' in listing, f'href="{mall_page}"' in result) == (False, False)
    assert ("Fashion Show" in listing, "Fashion Show" in result) == (True, True)


@pytest.mark.parametrize("how", ["delete page", "delete selected"])
def test_stock_deleted_in_admin_recomputes_its_listings_eligibility(client, world, how):
    client.force_login(world["manager"])
    stock = Stock.objects.get(store=world["store"], listing=world["tee"])

    if how == "delete page":
        response = client.post(reverse("admin:retailers_stock_delete", args=[stock.pk]), {"post": "yes"})
    else:
        data = {"action": "delete_selected", "_selected_action": [stock.pk], "post": "yes"}
        response = client.post(reverse("admin:retailers_stock_changelist"), data)

    assert response.status_code == 302
    assert not Stock.objects.filter(pk=stock.pk).exists()
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [(Kind.LISTING, world["tee"].pk)]
    eligibility_requests_run()
    result = EligibilityResult.objects.get(listing=world["tee"], mall=world["fashion_show"])
    assert "out_of_stock" in result.reasons


@pytest.mark.parametrize("how", ["delete page", "delete selected"])
def test_stock_holding_reservations_cannot_be_deleted_in_admin(client, world, how):
    client.force_login(world["manager"])
    stock = make_stock(store=world["store"], listing=world["cap"], on_hand=2, reserved=1)

    if how == "delete page":
        response = client.post(reverse("admin:retailers_stock_delete", args=[stock.pk]), {"post": "yes"})
    else:
        data = {"action": "delete_selected", "_selected_action": [stock.pk], "post": "yes"}
        response = client.post(reverse("admin:retailers_stock_changelist"), data)

    assert response.status_code == 200
    assert "SA-CAP-002 at Sunset Apparel — Fashion Show: 1 unit reserved by open orders" in response.content.decode()
    assert Stock.objects.filter(pk=stock.pk).exists()


def test_listing_category_typed_in_admin_is_stored_lowercase_and_matches_the_program_limits(client, world):
    ProgramLimits.objects.create(allowed_categories="apparel")
    client.force_login(world["manager"])
    data = _listing_change_data(client, world["tee"], category=" Apparel ")

    response = client.post(reverse("admin:retailers_listing_change", args=[world["tee"].pk]), data)
    with time_machine.travel(NOON_LA, tick=False):
        eligibility_requests_run()

    assert response.status_code == 302
    world["tee"].refresh_from_db()
    assert world["tee"].category == "apparel"
    result = EligibilityResult.objects.get(listing=world["tee"], mall=world["fashion_show"])
    assert "category_excluded" not in result.reasons


def test_listing_added_in_admin_with_a_capitalised_category_is_stored_lowercase(client, world):
    client.force_login(world["manager"])
    data = {"seller": world["tee"].seller_id, "seller_sku": "SA-NEW-004", "title": "New", "category": "  Footwear"}
    data |= {"weight_grams": 100, "size_class": "small"}

    response = client.post(reverse("admin:retailers_listing_add"), data)

    assert response.status_code == 302
    assert Listing.objects.get(seller_sku="SA-NEW-004").category == "footwear"


def test_migration_0012_lowercases_categories_typed_before_and_queues_their_recompute(world):
    migration = importlib.import_module("retailers.migrations.0012_categories_lowercase")
    Listing.objects.filter(pk=world["tee"].pk).update(category=" Apparel ")
    Listing.objects.filter(pk=world["cap"].pk).update(category="apparel")
    limits = ProgramLimits.objects.create(allowed_categories="Apparel , FOOTWEAR,apparel")
    EligibilityRequest.objects.all().delete()

    migration.lowercase_categories(apps, None)

    assert sorted(Listing.objects.values_list("seller_sku", "category")) == [
        ("OT-1", "apparel"),
        ("SA-CAP-002", "apparel"),
        ("SA-TEE-001", "apparel"),
    ]
    limits.refresh_from_db()
    assert limits.allowed_categories == "apparel,footwear"
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [(Kind.LISTING, world["tee"].pk)]
    eligibility_requests_run()
    assert (
        "category_excluded"
        not in EligibilityResult.objects.get(listing=world["tee"], mall=world["fashion_show"]).reasons
    )
