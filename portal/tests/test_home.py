import re

import pytest

from drivers.tests.factories import make_driver
from portal.tests.factories import PASSWORD, make_staff, make_store, make_user

pytestmark = pytest.mark.django_db


def test_home_sends_store_staff_to_their_board(client):
    membership = make_staff(store=make_store())
    client.force_login(membership.user)

    response = client.get("/")

    assert response.status_code == 302
    assert response.url == "/store/"


def test_home_sends_drivers_to_the_driver_page(client):
    driver = make_driver()
    client.force_login(driver.user)

    response = client.get("/")

    assert response.status_code == 302
    assert response.url == "/driver/"


def test_home_sends_seller_managers_and_operators_to_the_admin(client):
    client.force_login(make_user(is_staff=True))

    response = client.get("/")

    assert response.status_code == 302
    assert response.url == "/admin/"


def test_home_without_any_role_is_403_with_message(client):
    client.force_login(make_user())

    response = client.get("/")

    assert response.status_code == 403
    assert b"no store, driver profile or admin access" in response.content


def test_home_anonymous_goes_to_login(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/"


def test_login_lands_on_the_home_redirect(client):
    membership = make_staff(store=make_store())

    response = client.post(
        "/accounts/login/", {"username": membership.user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )

    assert response.status_code == 302
    assert response.url == "/"


def test_home_wrong_method_is_405(client):
    client.force_login(make_user())

    assert client.post("/").status_code == 405


def test_store_settings_page_shows_the_store_nav(client):
    membership = make_staff(store=make_store(name="Sunset Apparel — Chandler"))
    client.force_login(membership.user)

    response = client.get("/store/settings/")

    body = response.content.decode()
    assert 'aria-current="page">Settings</a>' in body
    assert '<span class="topbar-store">Sunset Apparel — Chandler</span>' in body


def test_pages_for_a_logged_in_person_are_not_kept_by_the_browser(client):
    driver = make_driver(user=make_user("ana"))
    staff = make_staff(store=make_store(), user=make_user("sam")).user

    anonymous_login = client.get("/accounts/login/")
    client.force_login(driver.user)
    driver_home = client.get("/driver/")
    client.force_login(staff)
    board = client.get("/store/")

    for response in (driver_home, board):
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
    assert "no-store" in anonymous_login["Cache-Control"]  # Django's own never_cache there


def _account_menu(response) -> list[str]:
    html = response.content.decode()
    menu = html[html.index('<div class="topbar-account-menu">') : html.index("</details>")]
    return re.findall(r"<a [^>]*>([^<]+)</a>|<button [^>]*>([^<]+)</button>", menu)


def test_account_menu_links_a_person_to_their_other_pages(client):
    membership = make_staff(store=make_store())
    make_driver(user=membership.user)
    client.force_login(membership.user)

    on_board = _account_menu(client.get("/store/"))
    on_driver = _account_menu(client.get("/driver/"))

    assert on_board == [("Driver pages", ""), ("Change password", ""), ("", "Log out")]
    assert on_driver == [("Store board", ""), ("Change password", ""), ("", "Log out")]


def test_account_menu_of_a_driver_alone_has_no_other_pages_and_an_operators_has_the_admin(client):
    driver = make_driver()
    client.force_login(driver.user)
    assert _account_menu(client.get("/driver/")) == [("Change password", ""), ("", "Log out")]

    operator = make_user(is_staff=True)
    make_staff(store=make_store(), user=operator)
    client.force_login(operator)
    assert _account_menu(client.get("/store/")) == [("Admin", ""), ("Change password", ""), ("", "Log out")]
