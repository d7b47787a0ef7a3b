"""`manage.py seed_demo`: the demo world of PRODUCT.md — four markets, their malls, sellers,
stores, listings, stock, orders in every status and the demo accounts.

Deterministic (fixed names, a fixed random seed) and idempotent (every row is found by its
natural key; orders by marketplace_order_id), so running it twice leaves the same rows. Orders
are created and moved through orders.services and orders.delivery; the one resting status no
service leaves an order in (undeliverable) is set by `_demo_only_advance` below. Demo drivers
come from drivers' `seed_drivers`.
"""

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from orders.delivery import (
    delivery_pin_for,
    order_confirm_returned,
    order_deliver,
    order_mark_undeliverable,
    order_pick_up,
)
from orders.lifecycle import OrderStatus, can_transition
from orders.models import Order, OrderEvent
from orders.services import (
    NewLine,
    order_accept,
    order_cancel,
    order_mark_ready,
    order_receive,
    order_record_picked,
    order_reject,
    order_report_short,
    order_start_picking,
)
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import (
    Listing,
    Mall,
    Market,
    Seller,
    SellerMembership,
    SizeClass,
    StaffRole,
    Stock,
    Store,
    StoreApplication,
    StoreCategory,
    StoreHours,
    StoreMembership,
    StoreStatus,
)

S = OrderStatus
DEMO_PASSWORD = "mallrun-demo"  # noqa: S105 - the documented demo password
SEED = 20240601
ORDER_PREFIX = "DEMO-"


@dataclass(frozen=True)
class MallSpec:
    code: str
    market: str
    market_slug: str
    name: str
    slug: str
    address: str
    latitude: str
    longitude: str
    time_zone: str
    parking: str
    entrance: str
    weekday_hours: tuple[dt.time, dt.time]
    sunday_hours: tuple[dt.time, dt.time]
    # (street, city, state, postal code, latitude, longitude) of delivery addresses nearby.
    addresses: tuple[tuple[str, str, str, str, str, str], ...]
    # (seller id, unit, store name) in board order; the first one is open around the clock.
    stores: tuple[tuple[str, str, str], ...]


MALLS: tuple[MallSpec, ...] = (
    MallSpec(
        code="FS",
        market="Las Vegas",
        market_slug="las-vegas",
        name="Fashion Show",
        slug="fashion-show",
        address="3200 S Las Vegas Blvd, Las Vegas, NV 89109",
        latitude="36.127200",
        longitude="-115.171100",
        time_zone="America/Los_Angeles",
        parking="Self-park garage off Fashion Show Dr (east side). Drivers use the marked 15-minute "
        "pickup bays on level 1, next to the Nordstrom entrance.",
        entrance="Enter through the level 1 doors by Nordstrom, take the escalator to the Grand Canal "
        "court; stores are signed by unit number.",
        weekday_hours=(dt.time(10), dt.time(21)),
        sunday_hours=(dt.time(11), dt.time(19)),
        addresses=(
            ("2810 Paradise Rd", "Las Vegas", "NV", "89109", "36.137400", "-115.154300"),
            ("1420 S Rancho Dr", "Las Vegas", "NV", "89102", "36.156200", "-115.172500"),
            ("4455 W Flamingo Rd", "Las Vegas", "NV", "89103", "36.115700", "-115.200100"),
            ("3111 Bel Air Dr", "Las Vegas", "NV", "89109", "36.136900", "-115.144800"),
            ("1001 S Main St", "Las Vegas", "NV", "89101", "36.160100", "-115.153600"),
        ),
        stores=(
            ("A2SUNSETAPPAREL", "L1-118", "Sunset Apparel Fashion Show"),
            ("A3DESERTKICKS", "L2-204", "Desert Kicks Fashion Show"),
            ("A4GADGETGARAGE", "L1-131", "Gadget Garage Fashion Show"),
            ("A1BRIGHTHOME", "L2-240", "Bright Home Fashion Show"),
            ("A5PAGEANDPLAY", "L3-305", "Page & Play Fashion Show"),
        ),
    ),
    MallSpec(
        code="CF",
        market="Chandler",
        market_slug="chandler",
        name="Chandler Fashion Center",
        slug="chandler-fashion-center",
        address="3111 W Chandler Blvd, Chandler, AZ 85226",
        latitude="33.300300",
        longitude="-111.898100",
        time_zone="America/Phoenix",
        parking="Surface lot on the north side off Chandler Blvd; delivery pickup spaces are signed "
        "outside the Harkins Theatres entrance.",
        entrance="Use the Harkins Theatres entrance (north), walk past the food court to the center court directory.",
        weekday_hours=(dt.time(10), dt.time(21)),
        sunday_hours=(dt.time(11), dt.time(18)),
        addresses=(
            ("2250 W Ray Rd", "Chandler", "AZ", "85224", "33.320700", "-111.877200"),
            ("900 N Alma School Rd", "Chandler", "AZ", "85224", "33.316400", "-111.857500"),
            ("3200 W Frye Rd", "Chandler", "AZ", "85226", "33.296000", "-111.904800"),
            ("1700 S Dobson Rd", "Chandler", "AZ", "85286", "33.279500", "-111.875300"),
            ("2700 W Germann Rd", "Chandler", "AZ", "85286", "33.277400", "-111.891100"),
        ),
        stores=(
            ("A2SUNSETAPPAREL", "1042", "Sunset Apparel Chandler"),
            ("A3DESERTKICKS", "1118", "Desert Kicks Chandler"),
            ("A1BRIGHTHOME", "2010", "Bright Home Chandler"),
            ("A5PAGEANDPLAY", "2076", "Page & Play Chandler"),
        ),
    ),
    MallSpec(
        code="TC",
        market="Tysons",
        market_slug="tysons",
        name="Tysons Corner Center",
        slug="tysons-corner",
        address="1961 Chain Bridge Rd, Tysons, VA 22102",
        latitude="38.917800",
        longitude="-77.221800",
        time_zone="America/New_York",
        parking="Garage P3 (Route 123 side), level 1: the rideshare and delivery zone by the Plaza entrance.",
        entrance="Enter at the Plaza entrance by the Metro walkway, take the elevator to level 1.",
        weekday_hours=(dt.time(10), dt.time(21, 30)),
        sunday_hours=(dt.time(11), dt.time(19)),
        addresses=(
            ("8300 Greensboro Dr", "McLean", "VA", "22102", "38.923300", "-77.233400"),
            ("1600 Spring Hill Rd", "Vienna", "VA", "22182", "38.927300", "-77.240600"),
            ("7900 Westpark Dr", "McLean", "VA", "22102", "38.922600", "-77.225100"),
            ("2000 Gallows Rd", "Vienna", "VA", "22182", "38.906000", "-77.227700"),
            ("6800 Old Dominion Dr", "McLean", "VA", "22101", "38.934800", "-77.178900"),
        ),
        stores=(
            ("A2SUNSETAPPAREL", "L1-F12", "Sunset Apparel Tysons"),
            ("A4GADGETGARAGE", "L2-G07", "Gadget Garage Tysons"),
            ("A1BRIGHTHOME", "L1-H21", "Bright Home Tysons"),
            ("A5PAGEANDPLAY", "L2-J03", "Page & Play Tysons"),
            ("A3DESERTKICKS", "L1-K15", "Desert Kicks Tysons"),
        ),
    ),
    MallSpec(
        code="BB",
        market="Friendswood",
        market_slug="friendswood",
        name="Baybrook Mall",
        slug="baybrook",
        address="500 Baybrook Mall, Friendswood, TX 77546",
        latitude="29.543100",
        longitude="-95.145200",
        time_zone="America/Chicago",
        parking="Park at The Terrace lot on the west side; the pickup spaces are marked in front of "
        "the Dick's Sporting Goods entrance.",
        entrance="Enter by Dick's Sporting Goods, turn left into the main concourse.",
        weekday_hours=(dt.time(10), dt.time(21)),
        sunday_hours=(dt.time(12), dt.time(18)),
        addresses=(
            ("1100 S Friendswood Dr", "Friendswood", "TX", "77546", "29.510900", "-95.190500"),
            ("2500 Bay Area Blvd", "Houston", "TX", "77058", "29.557800", "-95.121400"),
            ("200 W Edgewood Dr", "Friendswood", "TX", "77546", "29.530200", "-95.197700"),
            ("16800 El Camino Real", "Houston", "TX", "77062", "29.567200", "-95.139900"),
            ("3100 W Parkwood Ave", "Friendswood", "TX", "77546", "29.521100", "-95.215100"),
        ),
        stores=(
            ("A2SUNSETAPPAREL", "1205", "Sunset Apparel Baybrook"),
            ("A3DESERTKICKS", "1330", "Desert Kicks Baybrook"),
            ("A4GADGETGARAGE", "2112", "Gadget Garage Baybrook"),
            ("A1BRIGHTHOME", "2150", "Bright Home Baybrook"),
        ),
    ),
)

SELLERS: dict[str, str] = {
    "A2SUNSETAPPAREL": "Sunset Apparel",
    "A3DESERTKICKS": "Desert Kicks",
    "A4GADGETGARAGE": "Gadget Garage",
    "A1BRIGHTHOME": "Bright Home Goods",
    "A5PAGEANDPLAY": "Page & Play",
}

WEEK_10_TO_9 = {str(day): ["10:00", "21:00"] for day in range(6)}
# Waiting for review in the demo (seed_demo's _applications); "mall" is a MALLS code.
DEMO_APPLICATIONS: tuple[dict, ...] = (
    {
        "marketplace_seller_id": "A4GADGETGARAGE",
        "seller_name": "Gadget Garage",
        "store_name": "Gadget Garage Chandler",
        "mall": "CF",
        "unit": "1186",
        "contact_name": "Jordan Reyes",
        "email": "jordan.reyes@gadgetgarage.example",
        "phone": "(480) 555-0142",
        "hours": WEEK_10_TO_9 | {"6": ["11:00", "18:00"]},
        "categories": [StoreCategory.ELECTRONICS.value],
        "estimated_daily_orders": 18,
        "hours_ago": 3,
    },
    {
        "marketplace_seller_id": "A6CANYONCANDLE",
        "seller_name": "Canyon Candle Co.",
        "store_name": "Canyon Candle Fashion Show",
        "mall": "FS",
        "unit": "L3-322",
        "contact_name": "Priya Shah",
        "email": "priya@canyoncandle.example",
        "phone": "(702) 555-0187",
        "hours": WEEK_10_TO_9 | {"4": ["10:00", "23:00"], "5": ["10:00", "23:00"], "6": ["11:00", "19:00"]},
        "categories": [StoreCategory.HOME.value, StoreCategory.STATIONERY.value],
        "estimated_daily_orders": 12,
        "hours_ago": 26,
    },
)

COLOURS = ("White", "Black", "Heather Grey", "Navy", "Sunset Orange", "Sage")
SHOE_SIZES = ("Men's 9", "Men's 10", "Men's 11", "Women's 7", "Women's 8", "Women's 9")
M, SM, L, XL = SizeClass.MEDIUM, SizeClass.SMALL, SizeClass.LARGE, SizeClass.OVERSIZE

# seller id → (SKU prefix, [(code, title, category, grams, size class, hazmat, variants)]).
CATALOG: dict[str, tuple[str, list[tuple[str, str, str, int, str, bool, tuple[str, ...]]]]] = {
    "A2SUNSETAPPAREL": (
        "SA",
        [
            ("TEE", "Classic Crew Tee", "apparel", 180, SM, False, COLOURS),
            ("HOOD", "Fleece Pullover Hoodie", "apparel", 620, M, False, COLOURS),
            ("JEAN", "Slim Stretch Jeans", "apparel", 700, M, False, ("28", "30", "32", "34", "36", "38")),
            ("DRES", "Linen Sundress", "apparel", 300, SM, False, ("XS", "S", "M", "L", "XL", "XXL")),
            ("CAP", "Canvas Baseball Cap", "accessories", 110, SM, False, COLOURS),
            ("SOCK", "Crew Socks 3-Pack", "apparel", 150, SM, False, COLOURS),
            ("JKT", "Washed Denim Jacket", "apparel", 900, M, False, ("XS", "S", "M", "L", "XL", "XXL")),
            ("SHRT", "Chino Shorts", "apparel", 350, SM, False, ("28", "30", "32", "34", "36", "38")),
            ("MIST", "Body Mist 100 ml", "beauty", 160, SM, True, ("Citrus", "Coconut", "Desert Bloom")),
            ("RACK", "Rolling Garment Rack", "home", 11_000, XL, False, ("Chrome", "Black")),
        ],
    ),
    "A3DESERTKICKS": (
        "DK",
        [
            ("RUN", "Road Running Shoe", "footwear", 650, M, False, SHOE_SIZES),
            ("TRL", "Trail Runner", "footwear", 720, M, False, SHOE_SIZES),
            ("CRT", "Leather Court Sneaker", "footwear", 800, M, False, SHOE_SIZES),
            ("SLD", "Recovery Slide", "footwear", 400, SM, False, SHOE_SIZES),
            ("BOOT", "Suede Chelsea Boot", "footwear", 1_100, M, False, SHOE_SIZES),
            ("SOCK", "Cushioned Running Socks", "apparel", 90, SM, False, ("S", "M", "L", "XL")),
            ("HIGH", "High-Top Canvas Sneaker", "footwear", 700, M, False, SHOE_SIZES),
            ("LACE", "Flat Laces 120 cm", "accessories", 30, SM, False, ("White", "Black", "Red")),
            ("INS", "Arch Support Insoles", "footwear", 120, SM, False, ("S", "M", "L", "XL")),
            ("SPR", "Sneaker Protector Spray 200 ml", "care", 240, SM, True, ("Unscented", "Fresh")),
            ("CLN", "Sneaker Cleaning Kit", "care", 350, SM, False, ("Standard", "Premium")),
            ("BNCH", "Oak Shoe Storage Bench", "home", 24_000, XL, False, ("Natural", "Walnut")),
        ],
    ),
    "A4GADGETGARAGE": (
        "GG",
        [
            ("CBL", "USB-C to USB-C Cable", "electronics", 60, SM, False, ("1 m", "2 m", "3 m")),
            ("LTG", "USB-C to Lightning Cable", "electronics", 50, SM, False, ("1 m", "2 m")),
            ("STD", "Aluminium Laptop Stand", "accessories", 850, M, False, ("Silver", "Space Grey")),
            ("SLV", "Laptop Sleeve", "accessories", 300, SM, False, ("13 in", "14 in", "16 in")),
            ("CHG", "GaN Wall Charger", "electronics", 120, SM, False, ("30 W", "45 W", "65 W", "100 W")),
            ("PWR", "Power Bank", "electronics", 380, SM, True, ("10,000 mAh", "20,000 mAh")),
            ("EAR", "Wireless Earbuds", "electronics", 90, SM, False, ("White", "Black", "Navy")),
            ("CASE", "Clear Phone Case", "accessories", 40, SM, False, ("6.1 in", "6.3 in", "6.7 in")),
            ("GLS", "Tempered Glass Screen Protector", "accessories", 30, SM, False, ("6.1 in", "6.3 in", "6.7 in")),
            ("SPK", "Portable Bluetooth Speaker", "electronics", 540, SM, False, ("Black", "Blue", "Sand")),
            ("BAT", "AA Lithium Batteries 8-Pack", "electronics", 150, SM, True, ("8-pack", "16-pack")),
            ("MOUS", "Wireless Mouse", "electronics", 100, SM, False, ("Black", "White", "Grey")),
            ("KBD", "Compact Keyboard", "electronics", 620, M, False, ("US", "US Mac")),
            ("HUB", "USB-C Hub 7-in-1", "electronics", 110, SM, False, ("Grey", "Silver")),
            ("MON", "27-inch 4K Monitor", "electronics", 6_500, L, False, ("Stand", "VESA")),
            ("TV", "65-inch 4K TV", "electronics", 25_000, XL, False, ("2025 model",)),
            ("SSD", "Portable SSD", "electronics", 60, SM, False, ("1 TB", "2 TB")),
            ("WTC", "Smart Watch Band", "accessories", 30, SM, False, ("41 mm", "45 mm")),
            ("TRI", "Phone Tripod", "accessories", 280, SM, False, ("Mini", "Full")),
            ("CAM", "Webcam 1080p", "electronics", 160, SM, False, ("Standard", "With light")),
            ("LMP", "LED Desk Lamp", "home", 900, M, False, ("Black", "White")),
        ],
    ),
    "A1BRIGHTHOME": (
        "BH",
        [
            ("CND", "Soy Candle 8 oz", "home", 380, SM, False, ("Cedar", "Lavender", "Fig", "Sea Salt", "Amber")),
            ("MUG", "Stoneware Mug", "kitchen", 420, SM, False, ("Sand", "Slate", "Clay", "Sky", "Moss")),
            ("TWL", "Cotton Bath Towel", "home", 600, M, False, ("White", "Grey", "Navy", "Sage", "Blush")),
            ("PIL", "Throw Pillow 18 in", "home", 500, M, False, ("Linen", "Velvet", "Boucle", "Stripe", "Check")),
            ("FRM", "Picture Frame 8x10", "home", 700, SM, False, ("Black", "Oak", "Brass", "White", "Walnut")),
            ("SPR", "Room Spray Aerosol", "home", 300, SM, True, ("Cedar", "Lavender", "Citrus")),
            ("LMP", "Arc Floor Lamp", "home", 9_000, L, False, ("Brass", "Black")),
            ("RUG", "Area Rug 8x10", "home", 23_500, XL, False, ("Ivory", "Indigo")),
            ("BWL", "Serving Bowl", "kitchen", 900, M, False, ("Sand", "Slate", "Clay", "Sky", "Moss")),
            ("THR", "Knit Throw Blanket", "home", 1_200, M, False, ("Oat", "Charcoal", "Rust", "Olive", "Cream")),
            ("OIL", "Lamp Oil 32 oz", "home", 950, SM, True, ("Clear",)),
            ("NAP", "Linen Napkins Set of 4", "kitchen", 300, SM, False, ("Natural", "Rust", "Olive", "Navy")),
            ("VAS", "Ceramic Bud Vase", "home", 450, SM, False, ("White", "Speckle", "Terracotta")),
        ],
    ),
    "A5PAGEANDPLAY": (
        "PP",
        [
            ("PZL", "Jigsaw Puzzle 1000 pc", "toys", 700, M, False, ("Desert", "Harbor", "Garden", "City", "Space")),
            ("GAME", "Family Board Game", "toys", 1_300, M, False, ("Strategy", "Party", "Co-op", "Word", "Trivia")),
            ("PLSH", "Plush Toy 12 in", "toys", 250, SM, False, ("Fox", "Bear", "Owl", "Otter", "Cactus")),
            ("BLD", "Building Brick Set", "toys", 900, M, False, ("Car", "House", "Rocket", "Castle", "Train")),
            ("ART", "Art Supplies Kit", "toys", 1_100, M, False, ("Watercolor", "Sketch", "Pastel", "Clay")),
            ("BK", "Paperback Novel", "books", 320, SM, False, ("Mystery", "Romance", "Sci-fi", "Fantasy", "Thriller")),
            ("CBK", "Children's Picture Book", "books", 400, SM, False, ("Animals", "Bedtime", "Counting", "Space")),
            ("CARD", "Card Game", "toys", 200, SM, False, ("Classic", "Strategy", "Kids", "Party")),
            ("SCT", "Kick Scooter", "toys", 4_200, L, False, ("Blue", "Red")),
            ("TRMP", "Mini Trampoline", "toys", 16_000, XL, False, ("36 in", "48 in")),
            ("JRNL", "Dot Grid Journal", "stationery", 350, SM, False, ("Black", "Sage", "Terracotta", "Navy")),
            ("PEN", "Gel Pen Set", "stationery", 120, SM, False, ("12-pack", "24-pack")),
            ("STK", "Sticker Book", "stationery", 220, SM, False, ("Animals", "Space", "Dinosaurs")),
            ("BAT", "Toy Batteries AAA 12-Pack", "toys", 140, SM, True, ("Lithium",)),
        ],
    ),
}

# The statuses to seed at each store, in order. The two demo staff stores get every status so
# each board column has cards; other stores get a typical day.
FULL_DAY: tuple[str, ...] = (
    S.RECEIVED,
    S.RECEIVED,
    S.ACCEPTED,
    S.PICKING,
    S.PICKING,
    S.READY,
    S.SHORT,
    S.PICKED_UP,
    S.DELIVERED,
    S.DELIVERED,
    S.REJECTED,
    S.CANCELLED,
    S.UNDELIVERABLE,
    S.RETURNING,
    S.RETURNED,
)
TYPICAL_DAY: tuple[str, ...] = (S.RECEIVED, S.ACCEPTED, S.PICKING, S.READY, S.DELIVERED, S.CANCELLED)

CUSTOMERS = (
    ("Jamie D.", "+17025550142"),
    ("Priya S.", "+17025550178"),
    ("Marcus L.", "+17025550113"),
    ("Ana R.", "+17025550190"),
    ("Tom W.", "+17025550126"),
    ("Keiko N.", "+17025550161"),
)

# (username, first name, last name, superuser, staff)
ACCOUNTS = (
    ("ops", "Olivia", "Operator", True, True),
    ("seller", "Sam", "Sunset", False, True),
    ("staff-fs-1", "Riley", "Park", False, False),
    ("staff-fs-2", "Jordan", "Lee", False, False),
    ("manager-fs-1", "Morgan", "Diaz", False, False),
)


class Command(BaseCommand):
    help = "Loads the demo markets, malls, stores, listings, stock, orders and accounts (idempotent)."

    def handle(self, *args, **options) -> None:
        started = timezone.now()
        with transaction.atomic():
            sellers = self._sellers()
            malls = self._malls()
            stores = self._stores(malls, sellers)
            listings = self._listings(sellers)
            self._stock(stores, listings)
            users = self._accounts(sellers, stores)
            self._applications(malls)
            created = self._orders(stores, listings, users, now=started)
            call_command("seed_drivers", stdout=self.stdout)
            # Stock and hours were written in bulk (no per-row hooks): compute eligibility once, so
            # the admin and the feed have answers before the first beat sweep.
            eligibility_recompute(now=started)
        self._summary(created, seconds=(timezone.now() - started).total_seconds())

    def _sellers(self) -> dict[str, Seller]:
        return {
            seller_id: Seller.objects.update_or_create(marketplace_seller_id=seller_id, defaults={"name": name})[0]
            for seller_id, name in SELLERS.items()
        }

    def _malls(self) -> dict[str, Mall]:
        malls = {}
        for spec in MALLS:
            market, _ = Market.objects.update_or_create(
                slug=spec.market_slug, defaults={"name": spec.market, "time_zone": spec.time_zone}
            )
            malls[spec.code], _ = Mall.objects.update_or_create(
                slug=spec.slug,
                defaults={
                    "market": market,
                    "name": spec.name,
                    "address": spec.address,
                    "latitude": Decimal(spec.latitude),
                    "longitude": Decimal(spec.longitude),
                    "time_zone": spec.time_zone,
                    "delivery_radius_miles": Decimal("10"),
                    "parking_instructions": spec.parking,
                    "entrance_instructions": spec.entrance,
                },
            )
        return malls

    def _stores(self, malls: dict[str, Mall], sellers: dict[str, Seller]) -> dict[str, Store]:
        """Stores keyed "FS1", "FS2", …; the first store of each mall is open around the clock."""
        stores: dict[str, Store] = {}
        hours: list[StoreHours] = []
        for spec in MALLS:
            for index, (seller_id, unit, name) in enumerate(spec.stores, start=1):
                settings = {
                    "name": name,
                    "pickup_instructions": f"Pickup counter at the register of unit {unit}; "
                    "show the label QR code to the associate.",
                    "same_day_cutoff": dt.time(23, 59) if index == 1 else dt.time(18, 0),
                    "prep_sla_minutes": 20 if index == 1 else 30,
                    "hourly_capacity": 20 if index == 1 else 12,
                }
                store, _ = Store.objects.update_or_create(
                    seller=sellers[seller_id],
                    mall=malls[spec.code],
                    unit=unit,
                    defaults=settings,
                    # Status is only set on creation: a store paused in the demo stays paused.
                    create_defaults={**settings, "status": StoreStatus.LIVE},
                )
                stores[f"{spec.code}{index}"] = store
                for weekday in range(7):
                    if index == 1:
                        opens, closes = dt.time(0), dt.time(0)
                    else:
                        opens, closes = spec.sunday_hours if weekday == 6 else spec.weekday_hours
                    hours.append(StoreHours(store=store, weekday=weekday, opens_at=opens, closes_at=closes))
        StoreHours.objects.bulk_create(
            hours,
            update_conflicts=True,
            unique_fields=["store", "weekday"],
            update_fields=["opens_at", "closes_at"],
        )
        return stores

    def _listings(self, sellers: dict[str, Seller]) -> dict[str, list[Listing]]:
        rng = random.Random(SEED)
        rows = []
        for seller_id, (prefix, products) in CATALOG.items():
            for code, title, category, grams, size_class, hazmat, variants in products:
                for number, variant in enumerate(variants, start=1):
                    rows.append(
                        Listing(
                            seller=sellers[seller_id],
                            seller_sku=f"{prefix}-{code}-{number:03d}",
                            marketplace_item_id="B0" + "".join(rng.choices("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", k=8)),
                            title=f"{title}, {variant}",
                            category=category,
                            weight_grams=grams,
                            size_class=size_class,
                            hazmat=hazmat,
                        )
                    )
        Listing.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["seller", "seller_sku"],
            update_fields=["marketplace_item_id", "title", "category", "weight_grams", "size_class", "hazmat"],
        )
        by_seller: dict[str, list[Listing]] = {seller_id: [] for seller_id in CATALOG}
        for listing in Listing.objects.filter(seller__in=sellers.values()).select_related("seller"):
            by_seller[listing.seller.marketplace_seller_id].append(listing)
        return by_seller

    def _stock(self, stores: dict[str, Store], listings: dict[str, list[Listing]]) -> None:
        """Stock for every listing at every store of its seller. Existing rows are left alone:
        open orders hold reservations on them."""
        rows = []
        for key, store in sorted(stores.items()):
            rng = random.Random(f"{SEED}-{key}")
            for listing in listings[store.seller.marketplace_seller_id]:
                on_hand = rng.choice((0, 2, 5, 8, 12, 15, 20, 25, 30, 40))
                if listing.seller_sku == "SA-TEE-001":
                    on_hand = 40
                rows.append(Stock(store=store, listing=listing, on_hand=on_hand))
        Stock.objects.bulk_create(rows, ignore_conflicts=True)

    def _accounts(self, sellers: dict[str, Seller], stores: dict[str, Store]) -> dict:
        User = get_user_model()  # noqa: N806
        existing = {user.username: user for user in User.objects.filter(username__in=[a[0] for a in ACCOUNTS])}
        # Hashing is slow on purpose: one hash serves every new account, none for existing ones
        # (re-setting it would also log out anyone using the demo).
        password = make_password(DEMO_PASSWORD) if len(existing) < len(ACCOUNTS) else ""
        users = {}
        for username, first, last, superuser, staff in ACCOUNTS:
            user = existing.get(username)
            if user is None:
                user = User.objects.create(
                    username=username,
                    first_name=first,
                    last_name=last,
                    email=f"{username}@demo.mallrun.example",
                    is_superuser=superuser,
                    is_staff=staff,
                    password=password,
                )
            elif (user.is_superuser, user.is_staff, user.is_active) != (superuser, staff, True):
                user.is_superuser, user.is_staff, user.is_active = superuser, staff, True
                user.save(update_fields=["is_superuser", "is_staff", "is_active"])
            users[username] = user
        SellerMembership.objects.get_or_create(user=users["seller"], seller=sellers["A2SUNSETAPPAREL"])
        for username, store_key, role in (
            ("staff-fs-1", "FS1", StaffRole.ASSOCIATE),
            ("staff-fs-2", "FS2", StaffRole.ASSOCIATE),
            ("manager-fs-1", "FS1", StaffRole.MANAGER),
        ):
            StoreMembership.objects.update_or_create(
                user=users[username], store=stores[store_key], defaults={"role": role, "is_active": True}
            )
        return users

    def _applications(self, malls: dict[str, Mall]) -> None:
        """Store applications waiting for an operator (admin → Store applications): one from a
        seller already in the program, one from a new seller. Found by seller, mall and store
        name, so a re-run neither duplicates them nor revives one an operator decided."""
        now = timezone.now()
        for spec in DEMO_APPLICATIONS:
            StoreApplication.objects.get_or_create(
                marketplace_seller_id=spec["marketplace_seller_id"],
                mall=malls[spec["mall"]],
                store_name=spec["store_name"],
                defaults={
                    **{key: value for key, value in spec.items() if key not in {"mall", "store_name", "hours_ago"}},
                    "created_at": now - dt.timedelta(hours=spec["hours_ago"]),
                },
            )

    def _orders(self, stores: dict[str, Store], listings: dict[str, list[Listing]], users: dict, *, now) -> int:
        existing = set(
            Order.objects.filter(marketplace_order_id__startswith=ORDER_PREFIX).values_list(
                "marketplace_order_id", flat=True
            )
        )
        specs = {spec.code: spec for spec in MALLS}
        created = 0
        for key, store in sorted(stores.items()):
            plan = FULL_DAY if key in {"FS1", "FS2"} else TYPICAL_DAY
            staff = users["staff-fs-1"] if key == "FS1" else users["staff-fs-2"] if key == "FS2" else None
            orderable = [
                stock.listing
                for stock in Stock.objects.filter(store=store, on_hand__gte=F("reserved") + 4)
                .select_related("listing")
                .order_by("listing__seller_sku")
                if not stock.listing.hazmat and stock.listing.size_class != SizeClass.OVERSIZE
            ]
            for number, status in enumerate(plan, start=1):
                order_id = f"{ORDER_PREFIX}{key}-{number:04d}"
                if order_id in existing:
                    continue
                rng = random.Random(f"{SEED}-{order_id}")
                lines = [
                    NewLine(listing=listing, quantity=rng.choice((1, 1, 2)), unit_price_cents=rng.choice(PRICES))
                    for listing in rng.sample(orderable, k=rng.choice((1, 2, 3)))
                ]
                self._make_order(
                    order_id=order_id,
                    store=store,
                    spec=specs[key[:2]],
                    lines=lines,
                    status=status,
                    staff=staff,
                    rng=rng,
                    now=now,
                    age=dt.timedelta(minutes=AGE_MINUTES[status] + number),
                )
                created += 1
        return created

    def _make_order(self, *, order_id, store, spec, lines, status, staff, rng, now, age) -> Order:
        street, city, state, postal_code, latitude, longitude = rng.choice(spec.addresses)
        name, phone = rng.choice(CUSTOMERS)
        placed_at = now - age
        order = order_receive(
            store=store,
            marketplace_order_id=order_id,
            placed_at=placed_at,
            deliver_by=placed_at + dt.timedelta(hours=3),
            customer_name=name,
            customer_phone=phone,
            lines=lines,
            address_line1=street,
            city=city,
            state=state,
            postal_code=postal_code,
            latitude=Decimal(latitude),
            longitude=Decimal(longitude),
            delivery_instructions=rng.choice(("", "Leave with the front desk.", "Gate code 2468.")),
            requires_pin=rng.random() < 0.3,
            allows_partial=status != S.REJECTED,
        )
        if status == S.RECEIVED:
            return order
        if status == S.CANCELLED:
            return order_cancel(
                order=order, acting_user=None, actor_label="marketplace", reason="The customer cancelled."
            )
        if status == S.REJECTED:
            return order_reject(order=order, acting_user=staff, reason="Store closing early for a power outage.")
        order_accept(order=order, acting_user=staff)
        if status == S.ACCEPTED:
            return order
        order_start_picking(order=order, acting_user=staff)
        order_lines = list(order.lines.all())
        if status == S.PICKING:
            return order
        if status == S.SHORT:
            picked = {line.pk: line.quantity for line in order_lines}
            picked[order_lines[0].pk] = order_lines[0].quantity - 1
            order_record_picked(order=order, acting_user=staff, picked=picked)
            return order_report_short(
                order=order, acting_user=staff, reason="Only a display sample left, and it is damaged."
            )
        order_record_picked(order=order, acting_user=staff, picked={line.pk: line.quantity for line in order_lines})
        order_mark_ready(order=order, acting_user=staff, package_count=1 if len(order_lines) < 3 else 2)
        if status == S.READY:
            return order
        order_pick_up(order=order, acting_user=staff)
        if status == S.PICKED_UP:
            return order
        if status == S.DELIVERED:
            return order_deliver(
                order=order,
                acting_user=None,
                pin=delivery_pin_for(order),
                photo_name="demo/doorstep.jpg",
                actor_label=DEMO_DRIVER,
            )
        if status == S.UNDELIVERABLE:
            _demo_only_advance(order=order, to=S.UNDELIVERABLE, reason=NOBODY_HOME)
            return order
        order_mark_undeliverable(order=order, acting_user=None, reason=NOBODY_HOME, actor_label=DEMO_DRIVER)
        if status == S.RETURNED:
            order_confirm_returned(order=order, acting_user=staff)
        return order

    def _summary(self, created: int, *, seconds: float) -> None:
        counts = {
            "markets": Market.objects.count(),
            "malls": Mall.objects.count(),
            "sellers": Seller.objects.count(),
            "stores": Store.objects.count(),
            "listings": Listing.objects.count(),
            "stock rows": Stock.objects.count(),
            "orders": Order.objects.count(),
        }
        self.stdout.write("Demo data: " + ", ".join(f"{count} {name}" for name, count in counts.items()))
        by_status = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by("status"))
        self.stdout.write("Orders by status: " + ", ".join(f"{status} {n}" for status, n in by_status.items()))
        self.stdout.write(f"Created {created} new orders in {seconds:.1f} s.")
        self.stdout.write(
            "Logins (password mallrun-demo): ops (operator, /admin/), seller (Sunset Apparel, /admin/), "
            "staff-fs-1 and manager-fs-1 (Sunset Apparel Fashion Show, /store/), "
            "staff-fs-2 (Desert Kicks Fashion Show, /store/), driver-lv-1 to driver-lv-3 (/driver/)."
        )


PRICES = (1299, 1999, 2499, 2999, 3499, 4999, 7999)
# How long ago an order in each status was placed, in minutes: open work is recent.
AGE_MINUTES = {
    S.RECEIVED: 2,
    S.ACCEPTED: 6,
    S.PICKING: 12,
    S.READY: 22,
    S.SHORT: 16,
    S.PICKED_UP: 50,
    S.DELIVERED: 95,
    S.REJECTED: 40,
    S.CANCELLED: 30,
    S.UNDELIVERABLE: 110,
    S.RETURNING: 130,
    S.RETURNED: 170,
}
DEMO_DRIVER = "Ana (demo driver)"
NOBODY_HOME = "Nobody home and no safe place to leave the packages."


def _demo_only_advance(*, order: Order, to: str, reason: str) -> None:
    """DEMO DATA ONLY — not a service. orders.delivery moves picked_up → undeliverable →
    returning in one step, so no service leaves an order resting in "undeliverable"; the demo
    board still needs one in its Problems column. Follows the declared lifecycle table, writes
    the status with a conditional UPDATE and one OrderEvent by "demo"."""
    if not can_transition(order.status, to):
        raise ValueError(f"demo data: {order.status} → {to} is not in the lifecycle table")
    now = timezone.now()
    changed = Order.objects.filter(pk=order.pk, status=order.status).update(
        status=to, status_changed_at=now, updated_at=now, problem_reason=reason
    )
    if changed != 1:
        raise ValueError(f"demo data: order {order.number} changed under the seed")
    OrderEvent.objects.create(
        order=order,
        type=f"order.{to}",
        from_status=order.status,
        to_status=to,
        actor_label="demo",
        at=now,
        reason=reason,
    )
    order.status, order.status_changed_at, order.updated_at, order.problem_reason = to, now, now, reason
