"""Same-day eligibility rules of PRODUCT.md, per listing and mall, with no database.

A listing is eligible in a mall when some store of its seller there passes every store check
(live, not paused, open now, before its cutoff, spare hourly capacity, available stock), the
listing passes the program limits, and the market has driver supply. Otherwise every reason that
applies is reported: store reasons come from the candidate stores (live or paused) only when none
of them passes, so a reason that does not block the listing is never shown.

The set-based recompute in `eligibility_sql` uses `store_reason_bits` and `store_eligible_until`
from here for the few store-level facts, and mirrors `evaluate` in SQL for listings and stock; a
comparison test holds the two to the same rows.
"""

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# Stable codes, in PRODUCT.md's order; the bit is how the recompute stores them.
REASON_CODES: tuple[str, ...] = (
    "no_live_store",
    "store_paused",
    "store_closed",
    "after_cutoff",
    "out_of_stock",
    "store_at_capacity",
    "too_heavy",
    "oversize",
    "hazmat",
    "category_excluded",
    "no_driver_supply",
)
BIT: dict[str, int] = {code: 1 << index for index, code in enumerate(REASON_CODES)}
STORE_BITS = BIT["store_paused"] | BIT["store_closed"] | BIT["after_cutoff"] | BIT["out_of_stock"]
STORE_BITS |= BIT["store_at_capacity"]

REASON_LABELS: dict[str, str] = {
    "no_live_store": "No live store of the seller in this mall",
    "store_paused": "Store paused",
    "store_closed": "Store closed now",
    "after_cutoff": "After the same-day cutoff",
    "out_of_stock": "Out of stock",
    "store_at_capacity": "Store at hourly capacity",
    "too_heavy": "Too heavy for the program",
    "oversize": "Too large for the program",
    "hazmat": "Hazardous material",
    "category_excluded": "Category not in the program",
    "no_driver_supply": "No drivers online or scheduled in the market",
}

CANDIDATE_STATUSES = frozenset({"live", "paused"})


def codes_from_bits(bits: int) -> list[str]:
    return [code for code in REASON_CODES if bits & BIT[code]]


def bits_from_codes(codes: Iterable[str]) -> int:
    bits = 0
    for code in codes:
        bits |= BIT[code]
    return bits


@dataclass(frozen=True)
class ProgramLimitFacts:
    max_weight_grams: int = 22_680  # 50 lb
    allowed_size_classes: frozenset[str] = frozenset({"small", "medium", "large"})
    # Empty means every category is allowed.
    allowed_categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoreFacts:
    id: int
    name: str
    status: str
    time_zone: str
    cutoff: dt.time
    # weekday (0 = Monday) → (opens_at, closes_at) in mall local time; a missing day is closed;
    # closes at or before opens means after midnight, equal means around the clock.
    hours: Mapping[int, tuple[dt.time, dt.time]] = field(default_factory=dict)
    hourly_capacity: int = 12
    orders_last_hour: int = 0


@dataclass(frozen=True)
class ListingFacts:
    weight_grams: int
    size_class: str
    hazmat: bool
    category: str


@dataclass(frozen=True)
class Offer:
    """One candidate store for the listing in the mall, and its available stock there (on hand
    minus reserved; 0 when the store has no stock row)."""

    store: StoreFacts
    available: int


@dataclass(frozen=True)
class Verdict:
    eligible: bool
    reasons: tuple[str, ...]
    hint: str
    eligible_until: dt.datetime | None

    @property
    def reason_bits(self) -> int:
        return bits_from_codes(self.reasons)


def is_open(hours: Mapping[int, tuple[dt.time, dt.time]], local: dt.datetime) -> bool:
    """Whether the hours are open at a local wall-clock time, counting yesterday's span that
    runs past midnight."""
    t = local.time().replace(tzinfo=None)
    today = hours.get(local.weekday())
    if today is not None:
        opens, closes = today
        if opens == closes:
            return True
        if opens < closes and opens <= t < closes:
            return True
        if opens > closes and t >= opens:
            return True
    yesterday = hours.get((local.weekday() - 1) % 7)
    if yesterday is not None:
        opens, closes = yesterday
        if opens > closes and t < closes:
            return True
    return False


def local_time(now: dt.datetime, time_zone: str) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(zoneinfo.ZoneInfo(time_zone))


def store_reason_bits(store: StoreFacts, *, now: dt.datetime) -> int:
    """The store-level reasons (without stock) of a candidate store at `now`."""
    local = local_time(now, store.time_zone)
    bits = 0
    if store.status == "paused":
        bits |= BIT["store_paused"]
    if not is_open(store.hours, local):
        bits |= BIT["store_closed"]
    if local.time().replace(tzinfo=None) >= store.cutoff:
        bits |= BIT["after_cutoff"]
    if store.orders_last_hour >= store.hourly_capacity:
        bits |= BIT["store_at_capacity"]
    return bits


def closes_at(hours: Mapping[int, tuple[dt.time, dt.time]], local: dt.datetime) -> dt.datetime | None:
    """When the opening the store is in at `local` ends (aware, in local's zone): today's closing
    time, or this morning's for yesterday's span past midnight; None when it is closed, open
    round the clock, or open past midnight into tomorrow."""
    t = local.time().replace(tzinfo=None)
    yesterday = hours.get((local.weekday() - 1) % 7)
    if yesterday is not None and yesterday[0] > yesterday[1] and t < yesterday[1]:
        return dt.datetime.combine(local.date(), yesterday[1], tzinfo=local.tzinfo)
    today = hours.get(local.weekday())
    if today is not None and today[0] < today[1] and today[0] <= t < today[1]:
        return dt.datetime.combine(local.date(), today[1], tzinfo=local.tzinfo)
    return None


def store_eligible_until(store: StoreFacts, *, now: dt.datetime) -> dt.datetime:
    """When same-day ends today at this store, in the mall's local time (an aware datetime in
    that zone): today's cutoff, or the store's closing time when it closes before then (a store
    closing at 21:00 with a 22:00 cutoff takes no same-day order after 21:00)."""
    local = local_time(now, store.time_zone)
    cutoff = dt.datetime.combine(local.date(), store.cutoff, tzinfo=zoneinfo.ZoneInfo(store.time_zone))
    closing = closes_at(store.hours, local)
    return cutoff if closing is None else min(cutoff, closing)


def listing_reason_bits(listing: ListingFacts, limits: ProgramLimitFacts) -> int:
    bits = 0
    if listing.weight_grams > limits.max_weight_grams:
        bits |= BIT["too_heavy"]
    if listing.size_class not in limits.allowed_size_classes:
        bits |= BIT["oversize"]
    if listing.hazmat:
        bits |= BIT["hazmat"]
    if limits.allowed_categories and listing.category not in limits.allowed_categories:
        bits |= BIT["category_excluded"]
    return bits


def restock_hint(store_name: str) -> str:
    return f"restock 1 unit at {store_name}"


def resume_hint(store_name: str) -> str:
    return f"resume same-day at {store_name}"


def evaluate(
    *,
    listing: ListingFacts,
    offers: Sequence[Offer],
    limits: ProgramLimitFacts,
    driver_supply: bool,
    now: dt.datetime,
) -> Verdict:
    """The verdict for one listing in one mall. `offers` lists every store of the listing's
    seller in that mall; only live and paused ones are candidates."""
    candidates = [offer for offer in offers if offer.store.status in CANDIDATE_STATUSES]
    masks = []
    for offer in candidates:
        mask = store_reason_bits(offer.store, now=now)
        if offer.available <= 0:
            mask |= BIT["out_of_stock"]
        masks.append((offer.store, mask))
    if not candidates:
        store_bits = BIT["no_live_store"]
    elif any(mask == 0 for _, mask in masks):
        store_bits = 0
    else:
        store_bits = 0
        for _, mask in masks:
            store_bits |= mask
    other_bits = listing_reason_bits(listing, limits) | (0 if driver_supply else BIT["no_driver_supply"])
    bits = store_bits | other_bits
    eligible = bits == 0
    until = None
    if eligible:
        until = max(store_eligible_until(store, now=now) for store, mask in masks if mask == 0)
    hint = ""
    if store_bits and not other_bits:
        # One change fixes it when some store fails on exactly one thing a person can change now.
        by_id = sorted(masks, key=lambda pair: pair[0].id)
        restock = [store for store, mask in by_id if mask == BIT["out_of_stock"]]
        resume = [store for store, mask in by_id if mask == BIT["store_paused"]]
        if restock:
            hint = restock_hint(restock[0].name)
        elif resume:
            hint = resume_hint(resume[0].name)
    return Verdict(eligible=eligible, reasons=tuple(codes_from_bits(bits)), hint=hint, eligible_until=until)
