"""Edge cases of the marketplace API's input (marketplace-api.md): characters and times that
JSON or RFC 3339 allow but the database or Python cannot hold, cursors the feed never handed out,
and field names of wrongly typed fields. Each answers a problem document naming the field and
stores nothing; none is a 500."""

import base64
import copy
import datetime as dt
import json

import pytest
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed

pytestmark = pytest.mark.django_db
PROBLEM = "https://mallrun.example/problems/"


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def issued():
    return make_api_client()


def _changed(path: tuple, value) -> dict:
    document = order_document()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


def _assert_invalid(response, fields: list[str]) -> None:
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + "validation-error"
    assert [error["field"] for error in response.json()["errors"]] == fields


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("marketplace_order_id",), "marketplace_order_id"),
        (("seller_id",), "seller_id"),
        (("mall",), "mall"),
        (("customer", "name"), "customer.name"),
        (("address", "line1"), "address.line1"),
        (("address", "city"), "address.city"),
        (("address", "instructions"), "address.instructions"),
        (("lines", 0, "sku"), "lines[0].sku"),
    ],
)
def test_create_order_with_a_nul_character_in_a_text_field_answers_422_naming_it(world, issued, path, field):
    # JSON allows "\u0000" in a string; PostgreSQL text cannot hold it.
    document = _changed(path, "A2\u0000x")

    response = signed(issued, "POST", "/api/v1/orders", document)

    _assert_invalid(response, [field])
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("marketplace_order_id",), "marketplace_order_id"),
        (("customer", "name"), "customer.name"),
        (("address", "line2"), "address.line2"),
    ],
)
def test_create_order_with_an_unpaired_surrogate_answers_422_naming_the_field(world, issued, path, field):
    # "\ud800" is valid JSON text but no Unicode character: it cannot be encoded as UTF-8.
    document = _changed(path, "Jamie \ud800")

    response = signed(issued, "POST", "/api/v1/orders", raw=json.dumps(document).encode())

    _assert_invalid(response, [field])
    assert Order.objects.count() == 0


def test_order_read_and_cancel_with_a_nul_in_the_order_id_answer_404_not_found(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())

    read = signed(issued, "GET", "/api/v1/orders/113-4567890%00")
    cancel = signed(issued, "POST", "/api/v1/orders/113-4567890%00/cancel", {"reason": "customer_request"})

    assert (read.status_code, cancel.status_code) == (404, 404)
    assert read.json()["type"] == cancel.json()["type"] == PROBLEM + "not-found"
    assert cancel["Content-Type"] == "application/problem+json"
    assert Order.objects.get().status == "received"


def test_cancel_reason_with_a_nul_character_answers_422_and_changes_nothing(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())

    response = signed(issued, "POST", "/api/v1/orders/113-4567890-1234567/cancel", {"reason": "customer\u0000"})

    _assert_invalid(response, ["reason"])
    assert Order.objects.get().status == "received"
    assert OrderEvent.objects.filter(type="order.cancelled").count() == 0


def test_eligibility_feed_mall_with_a_nul_character_answers_422_naming_mall(world, issued):
    response = signed(issued, "GET", "/api/v1/eligibility?mall=fashion-show%00")

    _assert_invalid(response, ["mall"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        # Year 0 once in UTC, and year 10000: neither is a Python datetime.
        ({"placed_at": "0001-01-01T00:30:00+01:00"}, "placed_at"),
        ({"deliver_by": "9999-12-31T23:00:00-08:00"}, "deliver_by"),
    ],
)
def test_create_order_time_outside_years_1_to_9999_in_utc_answers_422(world, issued, changes, field):
    response = signed(issued, "POST", "/api/v1/orders", order_document(**changes))

    _assert_invalid(response, [field])
    assert Order.objects.count() == 0


@pytest.mark.parametrize("changed_since", ["0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-08:00"])
def test_eligibility_feed_changed_since_outside_years_1_to_9999_in_utc_answers_422(world, issued, changed_since):
    response = signed(issued, "GET", f"/api/v1/eligibility?mall=fashion-show&changed_since={changed_since}")

    _assert_invalid(response, ["changed_since"])


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("0001-01-01T00:00:00+01:00|1"),
        _cursor("9999-12-31T23:59:59-08:00|1"),
        _cursor("2026-11-22T17:03:00+00:00|99999999999999999999999"),
    ],
)
def test_eligibility_feed_cursor_it_never_handed_out_answers_422_naming_cursor(world, issued, cursor):
    response = signed(issued, "GET", f"/api/v1/eligibility?mall=fashion-show&cursor={cursor}")

    _assert_invalid(response, ["cursor"])


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ({"lat": "36.1212"}, "address.lat"),
        ({"lat": True}, "address.lat"),
        ({"lon": "-115.1697"}, "address.lon"),
        ({"lon": [1]}, "address.lon"),
    ],
)
def test_create_order_lat_or_lon_of_a_wrong_type_answers_422_naming_the_field_once(world, issued, address, field):
    document = order_document()
    document["address"].update(address)

    response = signed(issued, "POST", "/api/v1/orders", document)

    _assert_invalid(response, [field])
    assert Order.objects.count() == 0


def test_create_order_takes_whole_number_coordinates_as_numbers(world, issued):
    document = order_document()
    document["address"].update({"lat": 36, "lon": -115})

    response = signed(issued, "POST", "/api/v1/orders", document)

    # Their type is fine: (36, -115) is about 13 miles from the mall, outside its 10-mile radius.
    _assert_invalid(response, ["address"])


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 30_000 + b"]" * 30_000,
        b'{"marketplace_order_id": "113-4567890-1234567", "extra": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    ],
)
def test_create_order_json_nested_past_the_parsers_depth_answers_422_body(world, issued, raw):
    # Under 64 KiB, but deeper than Python's json module recurses.
    response = signed(issued, "POST", "/api/v1/orders", raw=raw)

    _assert_invalid(response, ["body"])
    assert response.json()["errors"][0]["message"] == "The body is not valid JSON."
    assert Order.objects.count() == 0


def _with_quantity(text: str, document: dict | None = None) -> bytes:
    # json.dumps writes 2, never 2.0 or 1e2: the number goes into the text as it is written.
    document = copy.deepcopy(document or order_document())
    document["lines"][0]["quantity"] = 7777
    return json.dumps(document).replace("7777", text).encode()


@pytest.mark.parametrize("text", ["2.0", "2.00", "0.2e1"])
def test_create_order_quantity_written_with_a_zero_fraction_is_that_integer(world, issued, text):
    # The OpenAPI 3.1 document says "type": "integer", and JSON Schema counts 2.0 as one.
    response = signed(issued, "POST", "/api/v1/orders", raw=_with_quantity(text))

    assert response.status_code == 201
    assert response.json()["lines"] == [{"sku": "SA-TEE-001", "quantity": 2, "picked": 0}]
    assert Order.objects.get().lines.get().quantity == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e2", "Input should be less than or equal to 99"),
        ("2.5", "Input should be a valid integer"),
        ("1e400", "Input should be a valid integer"),
    ],
)
def test_create_order_quantity_of_100_or_with_a_fraction_answers_422_naming_it(world, issued, text, message):
    response = signed(issued, "POST", "/api/v1/orders", raw=_with_quantity(text))

    _assert_invalid(response, ["lines[0].quantity"])
    assert response.json()["errors"][0]["message"] == message
    assert Order.objects.count() == 0


def test_create_order_sent_again_with_2_0_for_2_is_the_same_body_and_answers_200(world, issued):
    document = order_document()
    first = signed(issued, "POST", "/api/v1/orders", raw=_with_quantity("2", document))
    again = signed(issued, "POST", "/api/v1/orders", raw=_with_quantity("2.0", document))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == signed(issued, "GET", "/api/v1/orders/113-4567890-1234567").json()
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "changes",
    [
        # Its preparation deadline (placed_at + the store's SLA) would be in year 10000: was a 500.
        {"placed_at": "9999-12-31T23:30:00Z", "deliver_by": "9999-12-31T23:59:59Z"},
        {"placed_at": "2099-01-01T00:00:00Z", "deliver_by": "2099-01-01T04:00:00Z"},
    ],
)
def test_create_order_placed_in_the_future_answers_422_naming_placed_at(world, issued, changes):
    response = signed(issued, "POST", "/api/v1/orders", order_document(**changes))

    _assert_invalid(response, ["placed_at"])
    assert response.json()["errors"][0]["message"] == "The order cannot be placed in the future."
    assert Order.objects.count() == 0


def test_create_order_placed_a_clock_skew_ahead_is_taken(world, issued):
    # Within the 300 s the signature's timestamp may be off by.
    placed = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=240)

    response = signed(issued, "POST", "/api/v1/orders", order_document(placed_at=placed.isoformat()))

    assert response.status_code == 201
    assert Order.objects.get().placed_at == placed
