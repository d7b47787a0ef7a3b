import datetime as dt
import re

import pytest
from django.urls import reverse

from orders.labels import qr_svg
from orders.services import order_accept, order_mark_ready, order_record_picked, order_start_picking
from portal.tests.factories import make_mall, make_order, make_staff, make_store
from retailers.models import StaffRole

pytestmark = pytest.mark.django_db

PLACED_AT = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)


def _ready_order(*, store, staff, package_count: int):
    order = make_order(store=store, placed_at=PLACED_AT, deliver_in=dt.timedelta(hours=3, minutes=30))
    order_accept(order=order, acting_user=staff)
    order_start_picking(order=order, acting_user=staff)
    order_record_picked(order=order, acting_user=staff, picked={line.pk: line.quantity for line in order.lines.all()})
    order_mark_ready(order=order, acting_user=staff, package_count=package_count)
    return order


@pytest.fixture
def store():
    mall = make_mall(name="Scottsdale Fashion Square", time_zone="America/Phoenix")
    return make_store(name="Sole Mates", unit="L1-120", mall=mall)


@pytest.fixture
def associate(store):
    return make_staff(store=store, role=StaffRole.ASSOCIATE).user


def test_order_labels_staff_gets_one_label_per_package_with_local_deliver_by(client, store, associate):
    order = _ready_order(store=store, staff=associate, package_count=3)
    codes = list(order.packages.order_by("sequence").values_list("label_code", flat=True))
    client.force_login(associate)

    response = client.get(reverse("store:order-labels", args=[order.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    for code in codes:
        assert f'<p class="label-code">{code}</p>' in html
        assert f'aria-label="QR code for label {code}"' in html
    # 23:30 UTC is 4:30 PM in Phoenix, which keeps MST all year.
    assert html.count("Mon Nov 23, 4:30 PM MST") == 3
    assert "Package <strong>2</strong> of <strong>3</strong>" in html
    assert f"Order {order.number}" in html
    assert "Sole Mates · unit L1-120" in html
    assert "Scottsdale Fashion Square" in html
    assert "Print labels" in html
    assert "css/labels.css" in html
    assert "js/labels.js" in html


def test_order_labels_have_no_inline_styles_or_scripts(client, store, associate):
    order = _ready_order(store=store, staff=associate, package_count=2)
    client.force_login(associate)

    html = client.get(reverse("store:order-labels", args=[order.pk])).content.decode()

    assert "style=" not in html
    assert "<style" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


def test_order_labels_order_without_packages_says_so(client, store, associate):
    order = make_order(store=store)
    client.force_login(associate)

    response = client.get(reverse("store:order-labels", args=[order.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "This order has no packages yet, so there is nothing to print." in html
    assert "Print labels" not in html
    assert "<svg" not in html


def test_order_labels_other_store_staff_gets_404_while_order_exists(client, store, associate):
    order = _ready_order(store=store, staff=associate, package_count=1)
    outsider = make_staff(store=make_store(), role=StaffRole.MANAGER).user
    client.force_login(outsider)

    response = client.get(reverse("store:order-labels", args=[order.pk]))

    assert response.status_code == 404
    assert order.packages.count() == 1


def test_order_labels_anonymous_is_sent_to_login(client, store, associate):
    order = make_order(store=store)
    url = reverse("store:order-labels", args=[order.pk])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_order_labels_wrong_method_is_405(client, store, associate, method):
    order = make_order(store=store)
    client.force_login(associate)

    response = getattr(client, method)(reverse("store:order-labels", args=[order.pk]))

    assert response.status_code == 405


def test_qr_svg_is_full_qr_sized_by_css_without_style():
    svg = qr_svg("MR23456A")

    assert svg.startswith(
        '<svg role="img" aria-label="QR code for label MR23456A" viewBox="0 0 29 29" class="label-qr">'
    )
    assert "style" not in svg
    assert "width=" not in svg
