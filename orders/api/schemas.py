"""Request and response bodies of the marketplace API, as the contract states them. Types are
strict (a string is never taken for a number or a boolean) so a wrong field type is a
validation error, not a guess.

Request bodies are plain pydantic models: ninja's Schema adds a wrapping validator per nested
model (for reading Django objects, which a request body never is) that made validating an order
seven times slower (135 µs against 18 µs)."""

import datetime as dt
import re
from typing import Annotated, Literal

from ninja import Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)
from pydantic.json_schema import SkipJsonSchema

from orders.lifecycle import OrderStatus
from retailers.eligibility import REASON_CODES

E164 = r"^\+[1-9][0-9]{7,14}$"
ORDER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _text_only(value: object) -> object:
    # Lax datetime parsing would take a number (even "5") as a Unix time: the contract wants
    # RFC 3339 text with an offset.
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time string with an offset")
    return value


def _in_utc_range(value: dt.datetime) -> dt.datetime:
    # RFC 3339 allows 0001-01-01T00:30:00+01:00 and 9999-12-31T23:00:00-08:00, but in UTC they
    # fall in years 0 and 10000, which neither Python nor the database read back.
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("must fall within the years 1 to 9999 in UTC") from None
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_only), AfterValidator(_in_utc_range)]


def _storable(value: str) -> str:
    # JSON allows "\u0000", which PostgreSQL text cannot hold, and unpaired surrogates such as
    # "\ud800", which are not characters: either would fail at the write.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must not contain unpaired surrogates") from None
    return value


Text = Annotated[StrictStr, AfterValidator(_storable)]


class CustomerIn(BaseModel):
    name: Text = Field(min_length=1, max_length=120)
    phone: StrictStr | None = Field(default=None, pattern=E164, description="E.164, e.g. +17025550123")


class AddressIn(BaseModel):
    line1: Text = Field(min_length=1, max_length=200)
    line2: Text = Field(default="", max_length=200)
    city: Text = Field(min_length=1, max_length=100)
    state: StrictStr = Field(pattern=r"^[A-Z]{2}$")
    postal_code: StrictStr = Field(pattern=r"^[0-9]{5}(-[0-9]{4})?$")
    lat: StrictFloat | None = Field(default=None, ge=-90, le=90)
    lon: StrictFloat | None = Field(default=None, ge=-180, le=180)
    instructions: Text = Field(default="", max_length=300)


class LineIn(BaseModel):
    sku: Text = Field(min_length=1, max_length=60)
    quantity: StrictInt = Field(ge=1, le=99)
    unit_price_cents: StrictInt = Field(default=0, ge=0, le=100_000_000)


class OrderIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "marketplace_order_id": "113-4567890-1234567",
                    "seller_id": "A2SUNSETAPPAREL",
                    "mall": "fashion-show",
                    "placed_at": "2026-11-22T17:03:00Z",
                    "deliver_by": "2026-11-22T21:00:00-08:00",
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
            ]
        }
    )

    marketplace_order_id: StrictStr = Field(pattern=ORDER_ID)
    seller_id: Text = Field(min_length=1, max_length=40)
    mall: Text | None = Field(default=None, min_length=1, max_length=60)
    placed_at: Timestamp
    deliver_by: Timestamp
    customer: CustomerIn
    address: AddressIn
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    requires_pin: StrictBool = False


class CancelIn(BaseModel):
    reason: Text = Field(default="", max_length=300)


class StoreOut(Schema):
    name: str
    unit: str


class LineOut(Schema):
    sku: str
    quantity: int
    picked: int


class PackageOut(Schema):
    label: str
    status: str


class TimelineEntry(Schema):
    status: Literal[tuple(OrderStatus.values)]  # type: ignore[valid-type]
    at: dt.datetime


class DriverOut(Schema):
    """The driver of the order's route, from their acceptance of it: first name only (never
    surname, phone or location)."""

    first_name: str
    eta: dt.datetime = Field(description="Expected arrival at the address, in the mall's local time.")


class ProofOut(Schema):
    """Proof of delivery, once the order is delivered."""

    photo_url: str = Field(
        json_schema_extra={"format": "uri"},
        description="The delivery photo: a signed link that stops working 30 days after the delivery.",
    )
    pin_verified: bool = Field(description="Whether the shopper's PIN was checked at the door.")


class OrderOut(Schema):
    marketplace_order_id: str
    status: Literal[tuple(OrderStatus.values)]  # type: ignore[valid-type]
    mall: str
    store: StoreOut
    deliver_by: dt.datetime
    lines: list[LineOut]
    packages: list[PackageOut]
    timeline: list[TimelineEntry]
    # Absent until they apply, never null.
    driver: DriverOut | SkipJsonSchema[None] = Field(
        default=None, description="Present from the driver's acceptance of the route."
    )
    proof: ProofOut | SkipJsonSchema[None] = Field(default=None, description="Present after delivery.")
    last_event_seq: int = Field(
        description="The seq of the order's last event in the feed. An answer to a create or a cancel "
        "carries the seq of the event that write caused; 0 for an order with no event in the feed."
    )


class EventOut(Schema):
    seq: int
    id: str
    type: str
    occurred_at: dt.datetime
    order: OrderOut


class EventPage(Schema):
    events: list[EventOut]
    next_after: int


class ProblemOut(Schema):
    type: str
    title: str
    status: int
    detail: str


class FieldError(Schema):
    field: str
    message: str


class ValidationProblemOut(ProblemOut):
    errors: list[FieldError]


# The eligibility engine's stable codes (PRODUCT.md): the `not-eligible` reasons and the feed's.
EligibilityReason = Literal[tuple(REASON_CODES)]  # type: ignore[valid-type]


class NotEligibleProblemOut(ProblemOut):
    reasons: list[EligibilityReason] = Field(min_length=1)


class EligibilityItem(Schema):
    seller_id: str
    sku: str
    mall: str
    eligible: bool
    reasons: list[EligibilityReason]
    eligible_until: dt.datetime | None = Field(description="Mall-local cutoff that ends today's eligibility.")
    computed_at: dt.datetime


class EligibilityPage(Schema):
    items: list[EligibilityItem]
    next_cursor: str | None
