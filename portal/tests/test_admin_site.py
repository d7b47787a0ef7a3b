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
