"""A gentle stream of demo orders into the demo malls through the real API, signed by the
reference client, so the store board moves while someone watches. Development only."""

import datetime as dt
import math
import random
import re
import time
import urllib.error

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.api.client import MallrunApiError, MallrunClient
from orders.api.placement import store_reasons
from orders.api.services import api_client_create, api_secret_revoke_old, api_secret_rotate
from orders.models import ApiClient
from retailers.models import Mall, Stock, Store, StoreStatus

DEMO_MALLS = ["fashion-show", "chandler-fashion-center", "tysons-corner", "baybrook"]
CLIENT_NAME = "demo-simulator"
FIRST_NAMES = ["Jamie", "Alex", "Sam", "Riley", "Jordan", "Casey", "Morgan", "Taylor", "Avery", "Quinn"]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Blvd", "Lake Rd", "Hill St", "Elm Ct"]


def _credentials() -> tuple[str, str]:
    """The simulator's own client; a fresh secret each start (the old one is revoked), since a
    secret is never readable after it was issued."""
    client = ApiClient.objects.filter(name=CLIENT_NAME).first()
    if client is None:
        issued = api_client_create(name=CLIENT_NAME)
        return issued.client.key_id, issued.secret
    secret = api_secret_rotate(client=client)
    api_secret_revoke_old(client=client)
    return client.key_id, secret


def _near(mall: Mall, rng: random.Random) -> tuple[float, float]:
    """A point up to 60 % of the radius from the mall."""
    miles = float(mall.delivery_radius_miles) * 0.6 * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    lat = float(mall.latitude) + (miles / 69.0) * math.cos(bearing)
    lon = float(mall.longitude) + (miles / (69.0 * math.cos(math.radians(float(mall.latitude))))) * math.sin(bearing)
    return round(lat, 6), round(lon, 6)


def build_order(rng: random.Random, now: dt.datetime) -> dict | None:
    """An order one of the demo malls can take right now, or None when none can."""
    malls = list(Mall.objects.filter(slug__in=DEMO_MALLS))
    rng.shuffle(malls)
    for mall in malls:
        stores = list(Store.objects.filter(mall=mall, status=StoreStatus.LIVE).select_related("mall", "seller"))
        rng.shuffle(stores)
        for store in stores:
            stock = list(Stock.objects.filter(store=store, on_hand__gt=0).select_related("listing").order_by("?")[:20])
            stock = [row for row in stock if row.available >= 1][: rng.randint(1, 2)]
            lines = [(row.listing, 1) for row in stock]
            if not lines or store_reasons(store, lines, {(store.pk, r.listing_id): r.available for r in stock}, now):
                continue
            lat, lon = _near(mall, rng)
            # "…, Las Vegas, NV 89109": the shopper lives in the mall's own city and ZIP.
            where = re.search(r"([^,]+),\s*([A-Z]{2})\s+(\d{5})", mall.address)
            city, state, postal_code = where.groups() if where else ("Las Vegas", "NV", "89109")
            return {
                "marketplace_order_id": f"SIM-{now:%y%m%d}-{rng.randrange(10**7):07d}",
                "seller_id": store.seller.marketplace_seller_id,
                "mall": mall.slug,
                "placed_at": now.isoformat(timespec="seconds"),
                "deliver_by": (now + dt.timedelta(hours=3)).isoformat(timespec="seconds"),
                "customer": {"name": f"{rng.choice(FIRST_NAMES)} {rng.choice('ABCDEFGHKLMNPRSTW')}."},
                "address": {
                    "line1": f"{rng.randint(100, 9999)} {rng.choice(STREETS)}",
                    "city": city.strip(),
                    "state": state,
                    "postal_code": postal_code,
                    "lat": lat,
                    "lon": lon,
                },
                "lines": [
                    {"sku": listing.seller_sku, "quantity": quantity, "unit_price_cents": rng.randint(999, 8999)}
                    for listing, quantity in lines
                ],
            }
    return None


class Command(BaseCommand):
    help = "Sends a gentle stream of demo orders into the four demo malls through the marketplace API."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--every", type=float, default=45.0, help="Mean seconds between orders.")
        parser.add_argument("--count", type=int, default=0, help="Stop after this many orders (0: run forever).")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, base_url: str, every: float, count: int, seed: int | None, **options) -> None:
        rng = random.Random(seed)
        key_id, secret = _credentials()
        client = MallrunClient(base_url, key_id=key_id, secret=secret)
        sent = 0
        while not count or sent < count:
            document = build_order(rng, timezone.now())
            if document is None:
                self.stdout.write("simulator: no demo store can take an order right now")
            else:
                try:
                    response = client.create_order(document)
                    sent += 1
                    self.stdout.write(f"simulator: {response.status} {document['marketplace_order_id']}")
                except MallrunApiError as error:
                    self.stdout.write(f"simulator: refused {document['marketplace_order_id']}: {error}")
                except (urllib.error.URLError, OSError) as error:
                    self.stdout.write(f"simulator: API not reachable yet ({error})")
            if count and sent >= count:
                break
            time.sleep(rng.expovariate(1 / every))
