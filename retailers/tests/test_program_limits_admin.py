"""The program limits in the admin: operators set them (one row), seller managers never see them,
bad input is a form error, and a save queues the recompute of every mall."""

import datetime as dt

import pytest
import time_machine
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
from retailers.models import EligibilityRequest, EligibilityResult, Listing, ProgramLimits
from retailers.models import EligibilityRequestKind as Kind

pytestmark = pytest.mark.django_db
NOON_LA = dt.datetime(2026, 11, 18, 20, 0, tzinfo=dt.UTC)
CHANGELIST = reverse("admin:retailers_programlimits_changelist")
ADD = reverse("admin:retailers_programlimits_add")


def change_url(limits: ProgramLimits) -> str:
    return reverse("admin:retailers_programlimits_change", args=[limits.pk])


@pytest.fixture
def world():
    """Two malls, a store of one seller in each with a 3 kg boot and a 200 g tee in stock; the
    program allows up to 5 kg of small and medium footwear and apparel."""
    seller = make_seller()
    malls = [make_mall(name="Fashion Show"), make_mall(name="Tysons")]
    boot = make_listing(seller=seller, seller_sku="BOOT", category="footwear", weight_grams=3000, size_class="medium")
    tee = make_listing(seller=seller, seller_sku="TEE", category="apparel", weight_grams=200, size_class="small")
    for mall in malls:
        store = make_store(seller=seller, mall=mall)
        make_stock(store=store, listing=boot)
        make_stock(store=store, listing=tee)
    limits = ProgramLimits.objects.create(
        max_weight_grams=5000, allowed_size_classes="small,medium", allowed_categories="apparel,footwear"
    )
    eligibility_recompute(now=NOON_LA, driver_markets={mall.market_id for mall in malls})
    EligibilityRequest.objects.all().delete()
    return {
        "malls": malls,
        "boot": boot,
        "tee": tee,
        "limits": limits,
        "operator": make_user(is_staff=True, is_superuser=True),
        "manager": make_seller_manager(seller=seller).user,
    }


def _reasons() -> list[tuple[str, str, list[str]]]:
    rows = EligibilityResult.objects.select_related("listing", "mall").order_by("listing__seller_sku", "mall__name")
    return [(row.listing.seller_sku, row.mall.name, row.reasons) for row in rows]


def _post(**changes) -> dict:
    data = {"max_weight_grams": "5000", "allowed_size_classes": ["small", "medium"], "allowed_categories": "apparel"}
    data.update(changes)
    return data


def test_operator_changes_limits_and_every_malls_results_follow_after_the_sweep(client, world):
    assert [reasons for _, _, reasons in _reasons()] == [[]] * 4
    client.force_login(world["operator"])

    response = client.post(
        change_url(world["limits"]), _post(max_weight_grams="2500", allowed_categories="footwear, Apparel ")
    )

    assert response.status_code == 302
    limits = ProgramLimits.current()
    assert (limits.pk, limits.max_weight_grams, limits.allowed_size_classes, limits.allowed_categories) == (
        world["limits"].pk,
        2500,
        "small,medium",
        "footwear,apparel",
    )
    assert sorted(EligibilityRequest.objects.values_list("kind", "object_id")) == [
        (Kind.MALL, mall.pk) for mall in world["malls"]
    ]
    with time_machine.travel(NOON_LA, tick=False):
        eligibility_requests_run()
    assert EligibilityRequest.objects.count() == 0
    assert _reasons() == [
        ("BOOT", "Fashion Show", ["too_heavy", "no_driver_supply"]),
        ("BOOT", "Tysons", ["too_heavy", "no_driver_supply"]),
        ("TEE", "Fashion Show", ["no_driver_supply"]),
        ("TEE", "Tysons", ["no_driver_supply"]),
    ]


def test_operator_narrowing_categories_excludes_the_others_after_the_sweep(client, world):
    client.force_login(world["operator"])

    client.post(change_url(world["limits"]), _post(allowed_categories=" APPAREL "))
    with time_machine.travel(NOON_LA, tick=False):
        eligibility_requests_run()

    assert ProgramLimits.current().allowed_categories == "apparel"
    assert [(sku, mall, "category_excluded" in reasons) for sku, mall, reasons in _reasons()] == [
        ("BOOT", "Fashion Show", True),
        ("BOOT", "Tysons", True),
        ("TEE", "Fashion Show", False),
        ("TEE", "Tysons", False),
    ]


def test_program_limits_list_opens_the_one_row(client, world):
    client.force_login(world["operator"])

    response = client.get(CHANGELIST)

    assert (response.status_code, response["Location"]) == (302, change_url(world["limits"]))


def test_program_limits_change_page_shows_the_stored_limits(client, world):
    client.force_login(world["operator"])

    html = client.get(change_url(world["limits"])).content.decode()

    assert 'name="max_weight_grams" value="5000"' in html
    assert html.count('name="allowed_size_classes"') == 4
    assert html.count("checked") == 2
    assert 'value="small"' in html and 'value="oversize"' in html


def test_program_limits_second_row_cannot_be_added(client, world):
    client.force_login(world["operator"])

    page = client.get(ADD)
    posted = client.post(ADD, _post(max_weight_grams="100"))

    assert (page.status_code, posted.status_code) == (403, 403)
    assert list(ProgramLimits.objects.values_list("pk", "max_weight_grams")) == [(world["limits"].pk, 5000)]
    assert "Add program limits" not in client.get(change_url(world["limits"])).content.decode()


def test_program_limits_first_row_is_added_from_the_list(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    mall = make_mall()

    listed = client.get(CHANGELIST)
    response = client.post(ADD, _post(allowed_categories="Toys"))

    assert (listed.status_code, listed["Location"]) == (302, ADD)
    assert response.status_code == 302
    assert list(
        ProgramLimits.objects.values_list("max_weight_grams", "allowed_size_classes", "allowed_categories")
    ) == [(5000, "small,medium", "toys")]
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [(Kind.MALL, mall.pk)]


def test_program_limits_add_page_starts_from_the_limits_in_force(client):
    # No row yet: the defaults apply (ProgramLimits.current()), and the form shows them.
    client.force_login(make_user(is_staff=True, is_superuser=True))

    page = client.get(ADD)

    form = page.context["adminform"].form
    assert (form["max_weight_grams"].value(), form["allowed_size_classes"].value()) == (
        22_680,
        ["small", "medium", "large"],
    )
    assert "Save and add another" not in page.content.decode()


def test_program_limits_cannot_be_deleted(client, world):
    client.force_login(world["operator"])

    response = client.post(reverse("admin:retailers_programlimits_delete", args=[world["limits"].pk]), {"post": "yes"})

    assert response.status_code == 403
    assert ProgramLimits.objects.count() == 1


@pytest.mark.parametrize("url", ["list", "add", "change", "delete"])
def test_program_limits_seller_manager_is_refused_and_does_not_see_them(client, world, url):
    client.force_login(world["manager"])
    target = {
        "list": CHANGELIST,
        "add": ADD,
        "change": change_url(world["limits"]),
        "delete": reverse("admin:retailers_programlimits_delete", args=[world["limits"].pk]),
    }[url]

    got = client.get(target)
    posted = client.post(target, _post(max_weight_grams="1"))

    assert (got.status_code, posted.status_code) == (403, 403)
    assert ProgramLimits.current().max_weight_grams == 5000
    assert EligibilityRequest.objects.count() == 0
    assert "Program limits" not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"max_weight_grams": "0"}, "max_weight_grams", "Enter a weight of at least 1 gram."),
        ({"max_weight_grams": "-5"}, "max_weight_grams", "Enter a weight of at least 1 gram."),
        ({"max_weight_grams": "heavy"}, "max_weight_grams", "Enter a whole number of grams."),
        ({"max_weight_grams": "99999999999"}, "max_weight_grams", "Enter a weight of at most 2147483647 grams."),
        ({"allowed_size_classes": []}, "allowed_size_classes", "Choose at least one size class."),
        (
            {"allowed_size_classes": ["small", "huge"]},
            "allowed_size_classes",
            "huge is not a size class: choose among small, medium, large, oversize.",
        ),
        (
            {"allowed_categories": "apparel, " + "x" * 61},
            "allowed_categories",
            f"Keep each category to 60 characters, as a listing&#x27;s category: {'x' * 61} is longer.",
        ),
    ],
)
def test_program_limits_invalid_input_is_a_form_error_and_changes_nothing(client, world, changes, field, message):
    client.force_login(world["operator"])
    before = list(ProgramLimits.objects.values())

    response = client.post(change_url(world["limits"]), _post(**changes))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [message.replace("&#x27;", "'")]
    assert message in response.content.decode()
    assert list(ProgramLimits.objects.values()) == before
    assert EligibilityRequest.objects.count() == 0


def test_program_limits_facts_compare_categories_lowercase_even_for_a_row_typed_before(world):
    ProgramLimits.objects.filter(pk=world["limits"].pk).update(allowed_categories=" Apparel ,FOOTWEAR")

    assert ProgramLimits.current().facts().allowed_categories == frozenset({"apparel", "footwear"})
    assert Listing.objects.filter(category__in=ProgramLimits.current().facts().allowed_categories).count() == 2
