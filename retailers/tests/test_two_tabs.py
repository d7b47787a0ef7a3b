"""A person on the staff of two stores opens a store page for store A, switches to store B in
another tab, then submits the form on A's page: the action lands on A, never on B. Each page's
forms carry the store they showed (hidden `store`); a store the person is not staff of is 404."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from orders.models import Order
from orders.services import order_accept, order_mark_ready, order_record_picked, order_start_picking
from portal.tests.factories import (
    make_listing,
    make_mall,
    make_market,
    make_order,
    make_seller,
    make_staff,
    make_stock,
    make_store,
    make_user,
)
from retailers import onboarding
from retailers.models import (
    AgreementAcceptance,
    ProgramAgreement,
    StaffRole,
    Store,
    StoreMembership,
    StoreStatus,
)

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def two():
    """Two stores of one seller in one mall; Mia manages both."""
    seller = make_seller()
    mall = make_mall(market=make_market())
    first = make_store(seller=seller, mall=mall, name="Sole Mates — Level 1")
    second = make_store(seller=seller, mall=mall, name="Sole Mates — Level 2")
    mia = make_user("mia", first_name="Mia")
    make_staff(store=first, role=StaffRole.MANAGER, user=mia)
    make_staff(store=second, role=StaffRole.MANAGER, user=mia)
    return {"first": first, "second": second, "mia": mia}


def _form_fields(html: str, action: str) -> dict[str, str]:
    """The named inputs of the form posting to `action`, as the page rendered them."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S).group(0)
    return dict(re.findall(r'<input [^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))


def _page_of_first_then_switch(client, two, page_url: str) -> str:
    """Mia opens `page_url` at the first store, then switches to the second store in another tab."""
    client.force_login(two["mia"])
    client.post(reverse("store:switch-store"), {"store": two["first"].pk})
    html = client.get(page_url).content.decode()
    client.post(reverse("store:switch-store"), {"store": two["second"].pk})
    return html


def _settings_post() -> dict[str, str]:
    data = {
        "same_day_cutoff": "16:30",
        "prep_sla_minutes": "45",
        "hourly_capacity": "12",
        "pickup_instructions": "Back counter.",
    }
    for day in range(7):
        data[f"day_{day}_opens"] = "10:00"
        data[f"day_{day}_closes"] = "21:00"
    return data


# Store settings, pause and resume -----------------------------------------------------------------


def test_store_settings_save_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    page = _page_of_first_then_switch(client, two, reverse("store:store-settings"))
    url = reverse("store:store-settings")

    response = client.post(url, _form_fields(page, url) | _settings_post(), **HTMX)

    assert response.status_code == 200
    two["first"].refresh_from_db()
    two["second"].refresh_from_db()
    assert (two["first"].prep_sla_minutes, two["first"].pickup_instructions) == (45, "Back counter.")
    assert (two["second"].prep_sla_minutes, two["second"].pickup_instructions) == (30, "")
    assert "Sole Mates — Level 1" in response.content.decode()


def test_store_pause_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    page = _page_of_first_then_switch(client, two, reverse("store:store-settings"))
    url = reverse("store:store-pause")

    response = client.post(url, _form_fields(page, url) | {"reason": "Fire drill"}, **HTMX)

    assert response.status_code == 200
    two["first"].refresh_from_db()
    two["second"].refresh_from_db()
    assert (two["first"].is_paused, two["first"].paused_reason) == (True, "Fire drill")
    assert (two["second"].is_paused, two["second"].paused_reason) == (False, "")


def test_store_resume_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    Store.objects.filter(pk__in=[two["first"].pk, two["second"].pk]).update(
        status=StoreStatus.PAUSED, paused_reason="Closed"
    )
    page = _page_of_first_then_switch(client, two, reverse("store:store-settings"))
    url = reverse("store:store-resume")

    response = client.post(url, _form_fields(page, url), **HTMX)

    assert response.status_code == 200
    assert dict(Store.objects.filter(pk__in=[two["first"].pk, two["second"].pk]).values_list("pk", "status")) == {
        two["first"].pk: StoreStatus.LIVE,
        two["second"].pk: StoreStatus.PAUSED,
    }


@pytest.mark.parametrize("name", ["store:store-settings", "store:store-pause", "store:store-resume"])
@pytest.mark.parametrize("posted", ["outsiders", "99999999999999999999", "x"])
def test_store_settings_actions_for_a_store_the_user_is_not_staff_of_are_404(client, two, name, posted):
    outsiders = make_store(seller=two["first"].seller, mall=two["first"].mall, name="Not Mia's")
    status = StoreStatus.PAUSED if name == "store:store-resume" else StoreStatus.LIVE
    Store.objects.filter(pk=outsiders.pk).update(status=status, paused_reason="Closed")
    client.force_login(two["mia"])
    store = outsiders.pk if posted == "outsiders" else posted

    response = client.post(reverse(name), _settings_post() | {"reason": "Fire drill", "store": store}, **HTMX)

    assert response.status_code == 404
    outsiders.refresh_from_db()
    assert (outsiders.status, outsiders.prep_sla_minutes) == (status, 30)


def test_store_pause_by_a_person_who_is_only_associate_of_the_shown_store_is_403(client, two):
    StoreMembership.objects.filter(store=two["first"], user=two["mia"]).update(role=StaffRole.ASSOCIATE)
    client.force_login(two["mia"])  # still manager of the second store, her current one

    response = client.post(reverse("store:store-pause"), {"reason": "Fire drill", "store": two["first"].pk})

    assert response.status_code == 403
    assert list(Store.objects.filter(status=StoreStatus.PAUSED)) == []


# Team ---------------------------------------------------------------------------------------------


def test_team_invite_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    page = _page_of_first_then_switch(client, two, reverse("store:team"))
    url = reverse("store:team-invite")

    response = client.post(url, _form_fields(page, url) | {"email": "ari@example.com", "role": "associate"}, **HTMX)

    assert response.status_code == 200
    invited = StoreMembership.objects.filter(user__email="ari@example.com")
    assert list(invited.values_list("store_id", flat=True)) == [two["first"].pk]
    assert "Sole Mates — Level 1" in response.content.decode()


def test_team_role_change_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    ari = make_staff(store=two["first"], role=StaffRole.ASSOCIATE)
    page = _page_of_first_then_switch(client, two, reverse("store:team"))
    url = reverse("store:team-role", args=[ari.pk])

    response = client.post(url, _form_fields(page, url) | {"role": StaffRole.MANAGER}, **HTMX)

    assert response.status_code == 200
    ari.refresh_from_db()
    assert ari.role == StaffRole.MANAGER


def test_team_deactivate_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    ari = make_staff(store=two["first"], role=StaffRole.ASSOCIATE)
    page = _page_of_first_then_switch(client, two, reverse("store:team"))
    url = reverse("store:team-deactivate", args=[ari.pk])

    response = client.post(url, _form_fields(page, url), **HTMX)

    assert response.status_code == 200
    ari.refresh_from_db()
    assert ari.is_active is False


@pytest.mark.parametrize("name", ["store:team-invite", "store:team-role", "store:team-deactivate"])
def test_team_actions_for_a_store_the_user_is_not_staff_of_are_404(client, two, name):
    outsiders = make_store(seller=two["first"].seller, mall=two["first"].mall, name="Not Mia's")
    ari = make_staff(store=outsiders, role=StaffRole.ASSOCIATE)
    client.force_login(two["mia"])
    url = reverse(name) if name == "store:team-invite" else reverse(name, args=[ari.pk])

    response = client.post(url, {"email": "bo@example.com", "role": "manager", "store": outsiders.pk}, **HTMX)

    assert response.status_code == 404
    assert list(StoreMembership.objects.filter(store=outsiders).values_list("role", "is_active")) == [
        (StaffRole.ASSOCIATE, True)
    ]


# Onboarding ----------------------------------------------------------------------------------------


@pytest.fixture
def onboarding_two(two):
    ProgramAgreement.objects.all().delete()
    ProgramAgreement.objects.create(
        version="2026.1", text="Pack orders on time.", published_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    )
    Store.objects.filter(pk__in=[two["first"].pk, two["second"].pk]).update(status=StoreStatus.ONBOARDING)
    return two


def test_onboarding_agreement_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(client, onboarding_two):
    two = onboarding_two
    page = _page_of_first_then_switch(client, two, reverse("store:onboarding"))
    url = reverse("store:onboarding-agreement")

    response = client.post(url, _form_fields(page, url) | {"accept": "on"}, **HTMX)

    assert response.status_code == 200
    assert list(AgreementAcceptance.objects.values_list("store_id", flat=True)) == [two["first"].pk]


def test_onboarding_training_order_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(
    client, onboarding_two
):
    two = onboarding_two
    page = _page_of_first_then_switch(client, two, reverse("store:onboarding"))
    url = reverse("store:onboarding-training")

    response = client.post(url, _form_fields(page, url), **HTMX)

    assert response.status_code == 200
    assert list(Order.objects.filter(is_training=True).values_list("store_id", flat=True)) == [two["first"].pk]


def test_onboarding_call_driver_lands_on_the_store_the_page_showed_after_a_switch_in_another_tab(
    client, onboarding_two
):
    two = onboarding_two
    orders = {}
    for key in ("first", "second"):
        order = onboarding.training_order_create(store=two[key], acting_user=two["mia"])
        order_accept(order=order, acting_user=two["mia"])
        order_start_picking(order=order, acting_user=two["mia"])
        order_record_picked(
            order=order, acting_user=two["mia"], picked={ln.pk: ln.quantity for ln in order.lines.all()}
        )
        order_mark_ready(order=order, acting_user=two["mia"], package_count=1)
        orders[key] = order
    page = _page_of_first_then_switch(client, two, reverse("store:onboarding"))
    url = reverse("store:onboarding-training-driver")

    response = client.post(url, _form_fields(page, url), **HTMX)

    assert response.status_code == 200
    assert onboarding.training_route(orders["first"])[1] is not None
    assert onboarding.training_route(orders["second"]) == (None, None)


@pytest.mark.parametrize(
    "name", ["store:onboarding-agreement", "store:onboarding-training", "store:onboarding-training-driver"]
)
def test_onboarding_actions_for_a_store_the_user_is_not_staff_of_are_404(client, onboarding_two, name):
    outsiders = make_store(
        seller=onboarding_two["first"].seller, mall=onboarding_two["first"].mall, status=StoreStatus.ONBOARDING
    )
    client.force_login(onboarding_two["mia"])

    response = client.post(
        reverse(name),
        {"agreement": ProgramAgreement.current().pk, "accept": "on", "store": outsiders.pk},
        **HTMX,
    )

    assert response.status_code == 404
    assert (AgreementAcceptance.objects.count(), Order.objects.count()) == (0, 0)


# The order board's poll -----------------------------------------------------------------------------


def test_board_poll_refreshes_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    page = _page_of_first_then_switch(client, two, reverse("store:board"))
    poll_url = re.search(r'data-hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    # Something new at each store since the first tab's page loaded: the poll is not a 204.
    first_new, second_new = make_order(store=two["first"]), make_order(store=two["second"])

    response = client.get(poll_url, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="card-{first_new.pk}"' in html
    assert f'id="card-{second_new.pk}"' not in html
    # The other tab's choice stands: its pages still show the second store.
    assert f'id="card-{second_new.pk}"' in client.get(reverse("store:board")).content.decode()


def test_stock_search_lists_the_store_the_page_showed_after_a_switch_in_another_tab(client, two):
    listing = make_listing(seller=two["first"].seller, seller_sku="SM-BOOT-1")
    make_stock(store=two["first"], listing=listing, on_hand=4)
    make_stock(store=two["second"], listing=listing, on_hand=9)
    page = _page_of_first_then_switch(client, two, reverse("store:stock"))
    search = re.search(r'<form method="get" action="[^"]+" class="stock-search".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input [^>]*name="([^"]+)"[^>]*value="([^"]*)"', search))

    response = client.get(reverse("store:stock"), {**fields, "q": "SM-BOOT"}, **HTMX)

    html = response.content.decode()
    assert fields["store"] == str(two["first"].pk)
    assert re.search(r'name="on_hand"[^>]*value="4"', html)
    assert f'name="store" value="{two["first"].pk}"' in html
    assert f'name="store" value="{two["second"].pk}"' not in html
