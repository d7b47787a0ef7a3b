"""Shared arrangements for the marketplace API tests: a mall at Fashion Show's coordinates with a
live around-the-clock store, a client with its secret, and signed requests."""

import copy
import datetime as dt
import json
from decimal import Decimal

from django.test import Client
from django.utils import timezone

from orders.api.client import signed_headers
from orders.api.services import api_client_create
from portal.tests.factories import make_listing, make_mall, make_seller, make_stock, make_store, make_user

FASHION_SHOW = {"latitude": Decimal("36.127300"), "longitude": Decimal("-115.170700")}


def make_world(*, on_hand: int = 10, time_zone: str = "America/Los_Angeles"):
    """Same-day eligible at any hour, as the eligibility rules judge it: an around-the-clock store
    whose cutoff is the day's last instant, room for many orders an hour, and a driver (Ana
    Quintero) online in the market. The mall and its market are in `time_zone`."""
    from drivers.tests.factories import make_driver

    seller = make_seller(marketplace_seller_id="A2SUNSETAPPAREL")
    mall = make_mall(slug="fashion-show", time_zone=time_zone, **FASHION_SHOW)
    store = make_store(
        seller=seller,
        mall=mall,
        name="Sunset Apparel — Fashion Show",
        unit="L2-214",
        same_day_cutoff=dt.time.max,
        hourly_capacity=500,
    )
    listing = make_listing(seller=seller, seller_sku="SA-TEE-001")
    stock = make_stock(store=store, listing=listing, on_hand=on_hand)
    driver = make_driver(
        market=mall.market,
        online=True,
        user=make_user(first_name="Ana", last_name="Quintero", email="ana@drivers.example"),
        phone="+17025559876",
        latitude=mall.latitude,
        longitude=mall.longitude,
    )
    return {"seller": seller, "mall": mall, "store": store, "listing": listing, "stock": stock, "driver": driver}


def make_api_client(name: str = "marketplace", webhook_url: str | None = None):
    issued = api_client_create(name=name, webhook_url=webhook_url)
    return issued


ORDER = {
    "marketplace_order_id": "113-4567890-1234567",
    "seller_id": "A2SUNSETAPPAREL",
    "mall": "fashion-show",
    "placed_at": None,
    "deliver_by": None,
    "customer": {"name": "Jamie D.", "phone": "+17025550123"},
    "address": {
        "line1": "3355 S Las Vegas Blvd",
        "line2": "Apt 1204",
        "city": "Las Vegas",
        "state": "NV",
        "postal_code": "89109",
        "lat": 36.1212,
        "lon": -115.1697,
        "instructions": "Front desk",
    },
    "lines": [{"sku": "SA-TEE-001", "quantity": 2, "unit_price_cents": 2999}],
    "requires_pin": False,
}


def order_document(**changes) -> dict:
    document = copy.deepcopy(ORDER)
    now = timezone.now().replace(microsecond=0)
    document["placed_at"] = now.isoformat()
    document["deliver_by"] = (now + dt.timedelta(hours=4)).isoformat()
    document.update(changes)
    return document


def signed(
    issued,
    method: str,
    path: str,
    document=None,
    *,
    raw: bytes | None = None,
    timestamp=None,
    secret: str | None = None,
    key_id: str | None = None,
    client: Client | None = None,
):
    body = raw if raw is not None else (b"" if document is None else json.dumps(document).encode())
    headers = signed_headers(
        key_id=key_id or issued.client.key_id,
        secret=secret or issued.secret,
        method=method,
        path_with_query=path,
        body=body,
        timestamp=timestamp,
    )
    client = client or Client()
    return client.generic(
        method,
        path,
        data=body,
        content_type="application/json",
        headers=headers,
    )
