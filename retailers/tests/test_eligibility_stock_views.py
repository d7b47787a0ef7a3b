"""/store/stock: search, inline edit with htmx, eligibility shown right away."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from portal.tests.factories import make_listing, make_staff, make_stock, make_store
from retailers.models import EligibilityResult, StaffRole, Stock

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world():
    # Open round the clock with the cutoff at the end of the day, whenever the tests run.
    store = make_store(name="Sunset Apparel — Fashion Show", same_day_cutoff=dt.time(23, 59, 59))
    other = make_store(name="Elsewhere")
    tee = make_listing(seller=store.seller, seller_sku="SA-TEE-001", title="Logo tee")
    cap = make_listing(seller=store.seller, seller_sku="SA-CAP-002", title="Cap")
    theirs = make_listing(seller=other.seller, seller_sku="OT-1")
    make_stock(store=store, listing=tee, on_hand=3, reserved=1)
    make_stock(store=other, listing=theirs, on_hand=5)
    return {
        "store": store,
        "tee": tee,
        "cap": cap,
        "theirs": theirs,
        "associate": make_staff(store=store, role=StaffRole.ASSOCIATE).user,
        "manager": make_staff(store=store, role=StaffRole.MANAGER).user,
        "outsider": make_staff(store=other, role=StaffRole.MANAGER).user,
    }


def test_stock_list_shows_own_listings_with_stock(client, world):
    client.force_login(world["associate"])

    response = client.get(reverse("store:stock"))

    assert response.status_code == 200
    assert [row.listing.seller_sku for row in response.context["rows"]] == ["SA-CAP-002", "SA-TEE-001"]
    assert [(row.on_hand, row.reserved, row.available) for row in response.context["rows"]] == [(0, 0, 0), (3, 1, 2)]
    assert "OT-1" not in response.content.decode()
    # On a phone the column headers are hidden and each cell names itself.
    assert '<td data-label="Reserved">1</td>' in response.content.decode()
    assert '<td data-label="Available">2</td>' in response.content.decode()
    # Each row's button names its listing to a screen reader ("Save SA-TEE-001", not one of many "Save").
    assert '>Save<span class="visually-hidden"> SA-TEE-001</span></button>' in response.content.decode()


def test_stock_page_is_in_the_store_nav_from_the_board_and_marked_current(client, world):
    client.force_login(world["associate"])

    board = client.get(reverse("store:board")).content.decode()
    stock = client.get(reverse("store:stock")).content.decode()

    assert '<a href="/store/stock/">Stock</a>' in board
    assert '<a href="/store/stock/" aria-current="page">Stock</a>' in stock


def test_stock_list_search_returns_the_fragment_for_htmx(client, world):
    client.force_login(world["associate"])

    response = client.get(reverse("store:stock"), {"q": "tee"}, **HTMX)

    content = response.content.decode()
    assert ("SA-TEE-001" in content, "SA-CAP-002" in content) == (True, False)
    assert content.lstrip().startswith('<div id="stock-table"')
    assert "<html" not in content


def test_stock_update_htmx_saves_and_shows_eligibility_at_once(client, world):
    client.force_login(world["associate"])

    response = client.post(reverse("store:stock-update", args=[world["cap"].pk]), {"on_hand": "0"}, **HTMX)
    content = response.content.decode()

    assert response.status_code == 200
    assert content.lstrip().startswith(f'<tr id="stock-row-{world["cap"].pk}"')
    assert Stock.objects.get(listing=world["cap"]).on_hand == 0
    result = EligibilityResult.objects.get(listing=world["cap"])
    assert "out_of_stock" in result.reasons
    assert "Out of stock" in content


def test_stock_update_restock_turns_out_of_stock_away(client, world):
    client.force_login(world["manager"])
    client.post(reverse("store:stock-update", args=[world["cap"].pk]), {"on_hand": "0"}, **HTMX)

    client.post(reverse("store:stock-update", args=[world["cap"].pk]), {"on_hand": "4"}, **HTMX)

    assert "out_of_stock" not in EligibilityResult.objects.get(listing=world["cap"]).reasons


def test_stock_update_without_htmx_shows_the_saved_row_with_a_message(client, world):
    client.force_login(world["associate"])
    sku = world["tee"].seller_sku

    response = client.post(reverse("store:stock-update", args=[world["tee"].pk]), {"on_hand": "7"}, follow=True)

    assert response.redirect_chain == [(f"{reverse('store:stock')}?q={sku}", 302)]
    assert [str(message) for message in response.context["messages"]] == [f"{sku}: 7 on hand, saved."]
    assert [row.listing for row in response.context["rows"]] == [world["tee"]]
    assert Stock.objects.get(listing=world["tee"]).on_hand == 7


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "greater than or equal to 0"), ("lots", "Enter a whole number."), ("", "Enter how many are on the shelf.")],
)
def test_stock_update_bad_input_is_a_form_error_and_changes_nothing(client, world, value, message):
    client.force_login(world["associate"])

    response = client.post(reverse("store:stock-update", args=[world["tee"].pk]), {"on_hand": value}, **HTMX)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert Stock.objects.get(listing=world["tee"]).on_hand == 3


def test_stock_update_below_reserved_is_refused_with_a_message(client, world):
    client.force_login(world["associate"])

    response = client.post(reverse("store:stock-update", args=[world["tee"].pk]), {"on_hand": "0"})

    assert response.status_code == 422
    assert "1 unit of SA-TEE-001 is reserved by open orders" in response.content.decode()
    assert Stock.objects.get(listing=world["tee"]).on_hand == 3


def test_stock_update_another_sellers_listing_is_404(client, world):
    client.force_login(world["associate"])

    response = client.post(reverse("store:stock-update", args=[world["theirs"].pk]), {"on_hand": "1"}, **HTMX)

    assert response.status_code == 404
    assert Stock.objects.get(listing=world["theirs"]).on_hand == 5


def test_stock_of_another_store_is_404_for_its_outsider(client, world):
    client.force_login(world["outsider"])

    response = client.post(reverse("store:stock-update", args=[world["tee"].pk]), {"on_hand": "1"}, **HTMX)

    assert response.status_code == 404
    assert Stock.objects.get(listing=world["tee"]).on_hand == 3


def test_stock_pages_refuse_wrong_methods(client, world):
    client.force_login(world["associate"])

    listing = client.post(reverse("store:stock"))
    update = client.get(reverse("store:stock-update", args=[world["tee"].pk]))

    assert (listing.status_code, update.status_code) == (405, 405)


def test_stock_page_needs_store_staff(client, world, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="nobody", password="x-correct-horse"))

    response = client.get(reverse("store:stock"))

    assert response.status_code == 403


def test_stock_update_htmx_tells_the_pages_live_region_what_happened(client, world):
    client.force_login(world["associate"])
    mall = world["store"].mall.name

    saved = client.post(reverse("store:stock-update", args=[world["cap"].pk]), {"on_hand": "0"}, **HTMX)
    refused = client.post(reverse("store:stock-update", args=[world["tee"].pk]), {"on_hand": "0"}, **HTMX)

    assert (
        saved.content.decode()
        .rstrip()
        .endswith(
            '<p id="stock-status" data-hx-swap-oob="innerHTML">SA-CAP-002 saved: 0 on hand, 0 available. '
            f"Same-day in {mall}: not eligible (Out of stock; No drivers online or scheduled in the market).</p>"
        )
    )
    assert (
        refused.content.decode()
        .rstrip()
        .endswith(
            '<p id="stock-status" data-hx-swap-oob="innerHTML">SA-TEE-001 not saved: '
            "1 unit of SA-TEE-001 is reserved by open orders: on hand cannot go below that.</p>"
        )
    )


def _row_form_fields(html: str, listing_id: int) -> dict[str, str]:
    """The named inputs of a row's form as the page rendered them."""
    form = re.search(rf'<form method="post" action="/store/stock/{listing_id}/".*?</form>', html, re.S).group(0)
    return dict(re.findall(r'<input [^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))


def test_stock_update_saves_at_the_store_the_page_shows_after_a_switch_in_another_tab(client, world):
    second = make_store(seller=world["store"].seller, mall=world["store"].mall, name="Sunset Apparel — Level 2")
    make_staff(store=second, user=world["associate"])
    make_stock(store=second, listing=world["tee"], on_hand=9)
    client.force_login(world["associate"])
    client.post(reverse("store:switch-store"), {"store": world["store"].pk})
    page = client.get(reverse("store:stock")).content.decode()
    client.post(reverse("store:switch-store"), {"store": second.pk})  # another tab

    fields = _row_form_fields(page, world["tee"].pk) | {"on_hand": "5"}
    response = client.post(reverse("store:stock-update", args=[world["tee"].pk]), fields, **HTMX)

    assert response.status_code == 200
    assert Stock.objects.get(store=world["store"], listing=world["tee"]).on_hand == 5
    assert Stock.objects.get(store=second, listing=world["tee"]).on_hand == 9


@pytest.mark.parametrize("posted", ["outsiders", "99999999999999999999"])
def test_stock_update_for_a_store_the_user_is_not_staff_of_is_404(client, world, posted):
    client.force_login(world["associate"])
    outsiders = make_store(seller=world["store"].seller, mall=world["store"].mall)
    make_stock(store=outsiders, listing=world["tee"], on_hand=9)
    store = outsiders.pk if posted == "outsiders" else posted

    response = client.post(
        reverse("store:stock-update", args=[world["tee"].pk]), {"on_hand": "1", "store": store}, **HTMX
    )

    assert response.status_code == 404
    assert sorted(Stock.objects.filter(listing=world["tee"]).values_list("on_hand", flat=True)) == [3, 9]


def test_stock_search_by_htmx_tells_the_pages_live_region_how_many_listings_match(client, world):
    client.force_login(world["associate"])
    url = reverse("store:stock")

    one = client.get(url, {"q": world["tee"].seller_sku}, **HTMX).content.decode()
    none = client.get(url, {"q": "NO-SUCH-SKU"}, **HTMX).content.decode()

    status = r'<p id="stock-status" data-hx-swap-oob="innerHTML">(.*?)</p>'
    assert re.search(status, one).group(1) == f"1 listing matches “{world['tee'].seller_sku}”."
    assert re.search(status, none).group(1) == "0 listings match “NO-SUCH-SKU”."


def test_stock_save_over_a_count_someone_else_saved_since_is_refused_and_shows_theirs(client, world):
    url = reverse("store:stock-update", args=[world["tee"].pk])
    client.force_login(world["associate"])
    colleague = type(client)()
    colleague.force_login(world["manager"])

    first = colleague.post(url, {"store": world["store"].pk, "on_hand": "4", "was": "3"}, **HTMX)
    stale = client.post(url, {"store": world["store"].pk, "on_hand": "6", "was": "3"}, **HTMX)
    again = client.post(url, {"store": world["store"].pk, "on_hand": "6", "was": "4"}, **HTMX)

    assert first.status_code == 200
    assert stale.status_code == 422
    html = stale.content.decode()
    message = (
        "Someone else set SA-TEE-001 to 4 on hand while you were typing: nothing was saved. Count again, then save."
    )
    assert f"SA-TEE-001 not saved: {message}" in html
    assert '<input type="hidden" name="was" value="4">' in html  # saving again replaces the count now shown
    assert 'value="6"' in html  # what the person typed stays in the field
    assert again.status_code == 200
    assert Stock.objects.get(store=world["store"], listing=world["tee"]).on_hand == 6


def test_stock_save_of_the_same_count_someone_else_just_saved_is_not_a_conflict(client, world):
    url = reverse("store:stock-update", args=[world["tee"].pk])
    client.force_login(world["associate"])
    Stock.objects.filter(store=world["store"], listing=world["tee"]).update(on_hand=5)

    response = client.post(url, {"store": world["store"].pk, "on_hand": "5", "was": "3"}, **HTMX)

    assert response.status_code == 200
    assert Stock.objects.get(store=world["store"], listing=world["tee"]).on_hand == 5
