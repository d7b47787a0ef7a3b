import datetime as dt
import json

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from orders.api.secrets import decrypt_secret
from orders.lifecycle import OrderStatus
from orders.models import ApiClient, FeedEvent, Order, OrderEvent
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed
from portal.tests.factories import make_listing, make_mall, make_stock, make_store
from retailers.eligibility import codes_from_bits
from retailers.models import StoreStatus

pytestmark = pytest.mark.django_db
PROBLEM = "https://mallrun.example/problems/"


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def issued():
    return make_api_client()


def test_openapi_document_describes_every_operation_with_problem_responses():
    response = Client().get("/api/v1/openapi.json")

    document = response.json()
    assert response.status_code == 200
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/v1/orders",
        "/api/v1/orders/{marketplace_order_id}",
        "/api/v1/orders/{marketplace_order_id}/cancel",
        "/api/v1/events",
        "/api/v1/eligibility",
    }
    create = document["paths"]["/api/v1/orders"]["post"]["responses"]
    assert sorted(create) == ["200", "201", "401", "409", "422", "429"]
    assert list(create["409"]["content"]) == ["application/problem+json"]
    assert list(create["201"]["content"]) == ["application/json"]


def test_openapi_document_gives_every_operation_a_401_with_its_www_authenticate_challenge():
    document = Client().get("/api/v1/openapi.json").json()

    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert len(operations) == 5
    for operation in operations:
        unauthorized = operation["responses"]["401"]
        assert list(unauthorized["content"]) == ["application/problem+json"]
        assert unauthorized["headers"]["WWW-Authenticate"]["schema"] == {
            "type": "string",
            "const": 'Mallrun-Signature realm="Mallrun marketplace API"',
        }


def test_openapi_order_schema_has_driver_and_proof_as_the_contract_states():
    schemas = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]

    order = schemas["OrderOut"]
    assert "driver" not in order["required"] and "proof" not in order["required"]
    assert order["properties"]["driver"]["allOf"] == [{"$ref": "#/components/schemas/DriverOut"}]
    assert order["properties"]["proof"]["allOf"] == [{"$ref": "#/components/schemas/ProofOut"}]
    assert order["properties"]["last_event_seq"]["type"] == "integer"
    assert "last_event_seq" in order["required"]
    assert schemas["DriverOut"]["properties"].keys() == {"first_name", "eta"}
    assert schemas["DriverOut"]["required"] == ["first_name", "eta"]
    assert schemas["ProofOut"]["properties"]["photo_url"]["format"] == "uri"
    assert schemas["ProofOut"]["required"] == ["photo_url", "pin_verified"]


def test_openapi_address_coordinates_have_their_bounds_as_json_schema_keywords():
    address = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]["AddressIn"]["properties"]

    assert address["lat"]["anyOf"] == [{"type": "number", "minimum": -90, "maximum": 90}, {"type": "null"}]
    assert address["lon"]["anyOf"] == [{"type": "number", "minimum": -180, "maximum": 180}, {"type": "null"}]


def test_create_order_answers_201_and_reserves_stock(world, issued):
    # Frozen on a November noon in Las Vegas: deliver_by (placed_at + 4 h) is shown in the mall's
    # zone, which is -08:00 only outside daylight saving time.
    with time_machine.travel(dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC), tick=False):
        document = order_document()
        response = signed(issued, "POST", "/api/v1/orders", document)

    body = response.json()
    world["stock"].refresh_from_db()
    order = Order.objects.get()
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert body["marketplace_order_id"] == "113-4567890-1234567"
    assert body["status"] == "received"
    assert body["mall"] == "fashion-show"
    assert body["store"] == {"name": "Sunset Apparel — Fashion Show", "unit": "L2-214"}
    assert body["lines"] == [{"sku": "SA-TEE-001", "quantity": 2, "picked": 0}]
    assert body["packages"] == []
    assert [entry["status"] for entry in body["timeline"]] == ["received"]
    assert body["last_event_seq"] == FeedEvent.objects.get(order=order, type="order.received").seq
    assert "driver" not in body and "proof" not in body
    assert body["deliver_by"] == "2026-11-23T16:00:00-08:00"
    assert world["stock"].reserved == 2
    assert order.api_client == issued.client
    assert order.customer_phone == "+17025550123"


def test_create_answer_carries_the_seq_its_received_event_has_in_the_feed(world, issued):
    first = signed(issued, "POST", "/api/v1/orders", order_document())
    second = signed(issued, "POST", "/api/v1/orders", order_document(marketplace_order_id="113-0000000-0000002"))
    read = signed(issued, "GET", "/api/v1/orders/113-0000000-0000002")
    feed = signed(issued, "GET", "/api/v1/events").json()

    assert (first.status_code, second.status_code) == (201, 201)
    assert [(event["seq"], event["type"], event["order"]["marketplace_order_id"]) for event in feed["events"]] == [
        (first.json()["last_event_seq"], "order.received", "113-4567890-1234567"),
        (second.json()["last_event_seq"], "order.received", "113-0000000-0000002"),
    ]
    assert second.json()["last_event_seq"] == first.json()["last_event_seq"] + 1
    assert read.json()["last_event_seq"] == second.json()["last_event_seq"]


def test_create_replay_and_cancel_answers_carry_the_seq_of_the_latest_event(world, issued):
    document = order_document()
    created = signed(issued, "POST", "/api/v1/orders", document).json()

    replayed = signed(issued, "POST", "/api/v1/orders", document).json()
    cancelled = signed(issued, "POST", "/api/v1/orders/113-4567890-1234567/cancel", {"reason": "customer_request"})

    cancel_event = FeedEvent.objects.get(type="order.cancelled")
    assert replayed["last_event_seq"] == created["last_event_seq"]
    assert cancelled.status_code == 200
    assert cancelled.json()["last_event_seq"] == cancel_event.seq == created["last_event_seq"] + 1


@pytest.mark.postgres
def test_numbering_for_an_answer_is_one_round_trip_on_postgresql(world, issued):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.outbox import sequence_events_for_answer
    from portal.tests.factories import make_order

    earlier = make_order(store=world["store"], lines=[(world["listing"], 1)], api_client=issued.client)
    # The database session's first numbering also prepares the statements it keeps.
    assert sequence_events_for_answer(earlier.pk) == 1
    order = make_order(store=world["store"], lines=[(world["listing"], 1)], api_client=issued.client)

    with CaptureQueriesContext(connection) as queries:
        seq = sequence_events_for_answer(order.pk)

    assert len(queries) == 1
    assert seq == 2
    assert list(FeedEvent.objects.order_by("seq").values_list("order_id", "seq")) == [(earlier.pk, 1), (order.pk, 2)]


def test_get_numbers_the_received_event_of_an_order_no_answer_or_sweep_has_numbered(world, issued):
    from portal.tests.factories import make_order

    # Committed by the intake, whose answer never came to number it (a process killed between).
    order = make_order(store=world["store"], lines=[(world["listing"], 1)], api_client=issued.client)
    assert FeedEvent.objects.get(order=order).seq is None

    response = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}")

    assert response.status_code == 200
    assert response.json()["last_event_seq"] == FeedEvent.objects.get(order=order).seq == 1


def test_get_of_an_order_with_no_feed_event_says_0(world, issued):
    from portal.tests.factories import make_order

    order = make_order(store=world["store"], lines=[(world["listing"], 1)])
    Order.objects.filter(pk=order.pk).update(api_client=issued.client)

    response = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}")

    assert response.status_code == 200
    assert response.json()["last_event_seq"] == 0


def test_create_order_same_body_in_another_key_order_answers_200_with_the_same_order(world, issued):
    document = order_document()
    first = signed(issued, "POST", "/api/v1/orders", document)
    reordered = json.dumps(dict(reversed(list(document.items()))), indent=2).encode()

    again = signed(issued, "POST", "/api/v1/orders", raw=reordered)

    world["stock"].refresh_from_db()
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["marketplace_order_id"] == document["marketplace_order_id"]
    assert Order.objects.count() == 1
    assert world["stock"].reserved == 2


def test_create_order_same_id_other_body_answers_409_idempotency_conflict(world, issued):
    document = order_document()
    signed(issued, "POST", "/api/v1/orders", document)
    document["lines"][0]["quantity"] = 3

    response = signed(issued, "POST", "/api/v1/orders", document)

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + "idempotency-conflict"
    assert response.json()["status"] == 409


def _line(**changes):
    return [{"sku": "SA-TEE-001", "quantity": 2, "unit_price_cents": 2999, **changes}]


def _address(**changes):
    return {**order_document()["address"], **changes}


def _past():
    return (timezone.now() - dt.timedelta(minutes=5)).isoformat()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lines": _line(quantity=0)}, "lines[0].quantity"),
        ({"lines": _line(quantity=100)}, "lines[0].quantity"),
        ({"lines": _line(quantity="2")}, "lines[0].quantity"),
        ({"lines": _line(sku="NOPE")}, "lines[0].sku"),
        ({"seller_id": "NOBODY"}, "seller_id"),
        ({"customer": {"name": "Jamie", "phone": "702-555"}}, "customer.phone"),
        ({"address": _address(lat=40.7128, lon=-74.0060)}, "address"),
        ({"address": _address(postal_code="ABCDE")}, "address.postal_code"),
        ({"mall": "nowhere"}, "mall"),
        ({"requires_pin": "yes"}, "requires_pin"),
        ({"deliver_by": 1763000000}, "deliver_by"),
    ],
)
def test_create_order_invalid_field_answers_422_naming_it(world, issued, changes, field):
    document = order_document(**changes)

    response = signed(issued, "POST", "/api/v1/orders", document)

    body = response.json()
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert body["type"] == PROBLEM + "validation-error"
    assert [error["field"] for error in body["errors"]] == [field]
    assert Order.objects.count() == 0


def test_create_order_deadline_in_the_past_answers_422(world, issued):
    placed = (timezone.now() - dt.timedelta(hours=1)).isoformat()

    response = signed(issued, "POST", "/api/v1/orders", order_document(placed_at=placed, deliver_by=_past()))

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["deliver_by"]


def test_create_order_body_over_64_kib_answers_422(world, issued):
    document = order_document()
    document["padding"] = "x" * 70_000

    response = signed(issued, "POST", "/api/v1/orders", document)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    assert Order.objects.count() == 0


def test_create_order_malformed_json_answers_422(world, issued):
    response = signed(issued, "POST", "/api/v1/orders", raw=b"{not json")

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "validation-error"


def test_create_order_without_coordinates_is_placed_at_the_zip_centroid(world, issued):
    address = _address()
    del address["lat"], address["lon"]

    response = signed(issued, "POST", "/api/v1/orders", order_document(address=address))

    order = Order.objects.get()
    assert response.status_code == 201
    assert (float(order.latitude), float(order.longitude)) == (36.126, -115.1454)


def test_create_order_paused_store_answers_not_eligible_with_reasons(world, issued):
    world["store"].status = StoreStatus.PAUSED
    world["store"].paused_reason = "Stocktake"
    world["store"].save()

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "not-eligible"
    assert response.json()["reasons"] == ["store_paused"]
    assert Order.objects.count() == 0


def _not_eligible(response) -> list[str]:
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + "not-eligible"
    return response.json()["reasons"]


def test_create_order_at_a_store_at_its_hourly_capacity_answers_store_at_capacity(world, issued):
    from portal.tests.factories import make_order

    world["store"].hourly_capacity = 2
    world["store"].save(update_fields=["hourly_capacity"])
    make_order(store=world["store"], lines=[(world["listing"], 1)])
    make_order(store=world["store"], lines=[(world["listing"], 1)])

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    assert _not_eligible(response) == ["store_at_capacity"]
    assert Order.objects.count() == 2


def test_create_order_in_a_market_with_no_driver_online_answers_no_driver_supply(world, issued):
    from drivers.services import driver_go_offline

    driver_go_offline(driver=world["driver"], acting_user=None)

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    assert _not_eligible(response) == ["no_driver_supply"]
    world["stock"].refresh_from_db()
    assert world["stock"].reserved == 0


def test_create_order_counts_a_driver_whose_shift_covers_now_as_driver_supply(world, issued):
    """A driver between offers (not online) whose scheduled shift covers now is driver supply, in
    the intake's own statement on PostgreSQL as in the drivers app; once the shift ends, not."""
    from drivers.selectors import markets_with_driver_supply
    from drivers.services import driver_go_offline, driver_shift_schedule
    from orders.api.reads import intake_reads

    driver_go_offline(driver=world["driver"], acting_user=None)
    start = dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC)
    driver_shift_schedule(driver=world["driver"], starts_at=start, ends_at=start + dt.timedelta(hours=4), now=start)
    market = world["mall"].market_id
    answers = []
    for number, instant in enumerate((start + dt.timedelta(hours=2), start + dt.timedelta(hours=4))):
        with time_machine.travel(instant, tick=False):
            reads = intake_reads(seller_id="A2SUNSETAPPAREL", skus=["SA-TEE-001"], mall_slug="fashion-show")
            response = signed(issued, "POST", "/api/v1/orders", order_document(marketplace_order_id=f"114-{number}"))
        answers.append((reads.driver_markets, markets_with_driver_supply(now=instant), response))

    (during_reads, during_supply, during), (after_reads, after_supply, after) = answers
    assert (during_reads, during_supply, during.status_code) == ({market}, {market}, 201)
    assert (after_reads, after_supply) == (set(), set())
    assert _not_eligible(after) == ["no_driver_supply"]
    assert list(Order.objects.values_list("marketplace_order_id", flat=True)) == ["114-0"]


@pytest.mark.parametrize(
    ("time_zone", "expires_on", "evening", "after_midnight"),
    [
        # 23:30 local on the expiry day, then 00:00:01 local the day after (Las Vegas: -08:00).
        (
            "America/Los_Angeles",
            dt.date(2026, 11, 23),
            dt.datetime(2026, 11, 24, 7, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 24, 8, 0, 1, tzinfo=dt.UTC),
        ),
        # Phoenix keeps -07:00 on the US switch days.
        (
            "America/Phoenix",
            dt.date(2026, 11, 1),
            dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 2, 7, 0, 1, tzinfo=dt.UTC),
        ),
        (
            "America/Phoenix",
            dt.date(2026, 3, 8),
            dt.datetime(2026, 3, 9, 6, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 3, 9, 7, 0, 1, tzinfo=dt.UTC),
        ),
    ],
    ids=["las-vegas", "phoenix-us-fall-back-day", "phoenix-us-spring-forward-day"],
)
def test_create_order_counts_driver_supply_through_the_local_expiry_day_of_the_drivers_licence(
    issued, time_zone, expires_on, evening, after_midnight
):
    """The intake's driver supply (its own statement on PostgreSQL) and the drivers app's agree:
    the only driver's licence is valid through its date in the market's local time."""
    from drivers.models import DocumentKind
    from drivers.selectors import markets_with_driver_supply
    from drivers.tests.factories import set_documents_expiry
    from orders.api.reads import intake_reads

    world = make_world(time_zone=time_zone)
    set_documents_expiry(world["driver"], expires_on, kind=DocumentKind.LICENCE)
    market = world["mall"].market_id
    answers = []
    for number, instant in enumerate((evening, after_midnight)):
        with time_machine.travel(instant, tick=False):
            reads = intake_reads(seller_id="A2SUNSETAPPAREL", skus=["SA-TEE-001"], mall_slug="fashion-show")
            response = signed(issued, "POST", "/api/v1/orders", order_document(marketplace_order_id=f"113-{number}"))
        answers.append((reads.driver_markets, markets_with_driver_supply(now=instant), response))

    (evening_reads, evening_supply, in_time), (late_reads, late_supply, too_late) = answers
    assert (evening_reads, evening_supply, in_time.status_code) == ({market}, {market}, 201)
    assert (late_reads, late_supply) == (set(), set())
    assert _not_eligible(too_late) == ["no_driver_supply"]
    assert list(Order.objects.values_list("marketplace_order_id", flat=True)) == ["113-0"]


def test_create_order_at_a_store_not_live_answers_no_live_store(world, issued):
    world["store"].status = StoreStatus.ONBOARDING
    world["store"].save(update_fields=["status"])

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    assert _not_eligible(response) == ["no_live_store"]


def test_create_order_after_the_stores_cutoff_in_mall_time_answers_after_cutoff(world, issued):
    world["store"].same_day_cutoff = dt.time(17, 0)
    world["store"].save(update_fields=["same_day_cutoff"])
    # 17:30 in Las Vegas (UTC-8 in November).
    evening = dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC)

    with time_machine.travel(evening, tick=False):
        late = signed(issued, "POST", "/api/v1/orders", order_document())
    with time_machine.travel(evening - dt.timedelta(hours=1), tick=False):
        in_time = signed(issued, "POST", "/api/v1/orders", order_document())

    assert _not_eligible(late) == ["after_cutoff"]
    assert in_time.status_code == 201


def test_create_order_gives_every_reason_as_the_eligibility_engine_would(world, issued):
    """The eligibility feed and the intake agree: the same codes for the same listing and mall."""
    from drivers.services import driver_go_offline
    from retailers.eligibility_sql import eligibility_recompute
    from retailers.models import EligibilityResult

    world["store"].status = StoreStatus.PAUSED
    world["store"].paused_reason = "Stocktake"
    world["store"].save()
    driver_go_offline(driver=world["driver"], acting_user=None)
    eligibility_recompute(now=timezone.now())

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    result = EligibilityResult.objects.get(listing=world["listing"], mall=world["mall"])
    assert _not_eligible(response) == ["no_driver_supply", "store_paused"]
    assert sorted(codes_from_bits(result.reason_bits)) == ["no_driver_supply", "store_paused"]


def test_create_order_out_of_stock_answers_not_eligible_and_reserves_nothing(issued):
    world = make_world(on_hand=1)

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    world["stock"].refresh_from_db()
    assert response.status_code == 422
    assert response.json()["reasons"] == ["out_of_stock"]
    assert world["stock"].reserved == 0


def test_create_order_picks_the_store_with_fewest_open_orders(world, issued):
    busy = world["store"]
    quiet = make_store(seller=world["seller"], mall=world["mall"], same_day_cutoff=dt.time.max)
    make_stock(store=quiet, listing=world["listing"], on_hand=5)
    other = make_listing(seller=world["seller"])
    make_stock(store=busy, listing=other)
    from portal.tests.factories import make_order

    make_order(store=busy, lines=[(other, 1)])

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    assert response.status_code == 201
    assert Order.objects.get(marketplace_order_id="113-4567890-1234567").store == quiet


def test_create_order_without_mall_goes_to_the_nearest_covering_mall(world, issued):
    near = make_mall(slug="near", market=world["mall"].market, latitude=36.1210, longitude=-115.1690)
    store = make_store(seller=world["seller"], mall=near, same_day_cutoff=dt.time.max)
    make_stock(store=store, listing=world["listing"])

    response = signed(issued, "POST", "/api/v1/orders", order_document(mall=None))

    assert response.status_code == 201
    assert response.json()["mall"] == "near"


@pytest.mark.parametrize(
    "tamper",
    ["signature", "stale-timestamp", "future-timestamp", "unknown-key", "body", "missing-signature", "no-headers"],
)
def test_signature_problems_answer_401_without_saying_which(world, issued, tamper):
    document = order_document()
    kwargs = {}
    if tamper == "signature":
        kwargs["secret"] = "wrong-secret"
    elif tamper == "stale-timestamp":
        kwargs["timestamp"] = int(timezone.now().timestamp()) - 302
    elif tamper == "future-timestamp":
        kwargs["timestamp"] = int(timezone.now().timestamp()) + 305
    elif tamper == "unknown-key":
        kwargs["key_id"] = "mk_unknown"
    client = Client()
    if tamper == "body":
        from orders.api.client import signed_headers

        headers = signed_headers(
            key_id=issued.client.key_id,
            secret=issued.secret,
            method="POST",
            path_with_query="/api/v1/orders",
            body=b"{}",
        )
        response = client.post(
            "/api/v1/orders", data=json.dumps(document), content_type="application/json", headers=headers
        )
    elif tamper == "missing-signature":
        response = client.post(
            "/api/v1/orders",
            data=json.dumps(document),
            content_type="application/json",
            headers={"Mallrun-Key": issued.client.key_id},
        )
    elif tamper == "no-headers":
        response = client.post("/api/v1/orders", data=json.dumps(document), content_type="application/json")
    else:
        response = signed(issued, "POST", "/api/v1/orders", document, **kwargs)

    assert response.status_code == 401
    # RFC 9110: a 401 names the scheme to authenticate with.
    assert response["WWW-Authenticate"] == 'Mallrun-Signature realm="Mallrun marketplace API"'
    assert response.json() == {
        "type": PROBLEM + "invalid-signature",
        "title": "The request signature is not valid",
        "status": 401,
        "detail": "The request could not be authenticated.",
    }
    assert Order.objects.count() == 0


def test_signature_of_a_revoked_key_answers_401(world, issued):
    ApiClient.objects.filter(pk=issued.client.pk).update(revoked=True)

    response = signed(issued, "GET", "/api/v1/events")

    assert response.status_code == 401


def test_signature_with_the_new_secret_among_several_is_accepted_during_rotation(world, issued):
    from orders.api.client import signed_headers
    from orders.api.services import api_secret_rotate

    new_secret = api_secret_rotate(client=issued.client)
    old = signed_headers(
        key_id=issued.client.key_id, secret="retired", method="GET", path_with_query="/api/v1/events?after=0", body=b""
    )
    new = signed_headers(
        key_id=issued.client.key_id,
        secret=new_secret,
        method="GET",
        path_with_query="/api/v1/events?after=0",
        body=b"",
        timestamp=int(old["Mallrun-Timestamp"]),
    )
    headers = {**old, "Mallrun-Signature": f"{old['Mallrun-Signature']} {new['Mallrun-Signature']}"}

    response = Client().get("/api/v1/events?after=0", headers=headers)

    assert response.status_code == 200


def test_secrets_are_stored_encrypted(issued):
    stored = issued.client.secrets.get().encrypted_secret

    assert issued.secret not in stored
    assert decrypt_secret(stored) == issued.secret


def test_get_order_answers_the_representation(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())
    signed(issued, "GET", "/api/v1/events")

    response = signed(issued, "GET", "/api/v1/orders/113-4567890-1234567")

    assert response.status_code == 200
    assert response.json()["status"] == "received"
    assert response.json()["last_event_seq"] == 1


def test_event_feed_pages_with_next_after_and_never_repeats(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())
    signed(issued, "POST", "/api/v1/orders/113-4567890-1234567/cancel", {"reason": "customer_request"})

    first = signed(issued, "GET", "/api/v1/events?after=0&limit=1").json()
    second = signed(issued, "GET", f"/api/v1/events?after={first['next_after']}&limit=1").json()
    third = signed(issued, "GET", f"/api/v1/events?after={second['next_after']}&limit=1").json()

    assert [(event["seq"], event["type"]) for event in first["events"]] == [(1, "order.received")]
    assert [(event["seq"], event["type"]) for event in second["events"]] == [(2, "order.cancelled")]
    assert second["events"][0]["order"]["status"] == "cancelled"
    assert second["events"][0]["id"].startswith("evt_")
    assert third == {"events": [], "next_after": 2}


def test_event_feed_shows_only_the_clients_own_events(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())
    other = make_api_client("other marketplace")

    response = signed(other, "GET", "/api/v1/events")

    assert response.json() == {"events": [], "next_after": 0}


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "after=-1", "after=x"])
def test_event_feed_invalid_query_answers_422(issued, query):
    response = signed(issued, "GET", f"/api/v1/events?{query}")

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "validation-error"


def test_get_order_of_another_client_answers_404_while_it_exists(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())
    other = make_api_client("other marketplace")

    response = signed(other, "GET", "/api/v1/orders/113-4567890-1234567")

    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM + "not-found"


def test_get_order_unknown_answers_404(world, issued):
    response = signed(issued, "GET", "/api/v1/orders/nope")

    assert response.status_code == 404


def test_cancel_order_answers_200_twice_and_releases_stock(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())

    first = signed(issued, "POST", "/api/v1/orders/113-4567890-1234567/cancel", {"reason": "customer_request"})
    again = signed(issued, "POST", "/api/v1/orders/113-4567890-1234567/cancel", {"reason": "customer_request"})

    world["stock"].refresh_from_db()
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "cancelled"
    assert world["stock"].reserved == 0
    assert OrderEvent.objects.filter(type="order.cancelled").count() == 1


def test_cancel_order_picked_up_answers_409_conflict(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())
    Order.objects.update(status=OrderStatus.PICKED_UP)

    response = signed(issued, "POST", "/api/v1/orders/113-4567890-1234567/cancel", {"reason": "customer_request"})

    assert response.status_code == 409
    assert response.json()["type"] == PROBLEM + "conflict"


def test_cancel_order_racing_the_stores_accept_still_cancels(world, issued):
    from orders.api.services import api_order_cancel
    from orders.services import order_accept

    signed(issued, "POST", "/api/v1/orders", order_document())
    # The cancel read the order as received; the store accepts it before the cancel writes.
    seen_by_cancel = Order.objects.get()
    order_accept(order=Order.objects.get(), acting_user=None)

    cancelled = api_order_cancel(client=issued.client, order=seen_by_cancel, reason="customer_request")

    world["stock"].refresh_from_db()
    assert cancelled.status == Order.objects.get().status == "cancelled"
    assert world["stock"].reserved == 0
    assert list(OrderEvent.objects.filter(order=cancelled).values_list("type", flat=True).order_by("pk")) == [
        "order.received",
        "order.accepted",
        "order.cancelled",
    ]


def test_cancel_order_racing_the_pickup_answers_409_conflict(world, issued):
    from orders.api.problems import Problem
    from orders.api.services import api_order_cancel

    signed(issued, "POST", "/api/v1/orders", order_document())
    seen_by_cancel = Order.objects.get()
    Order.objects.update(status=OrderStatus.PICKED_UP)

    with pytest.raises(Problem) as refused:
        api_order_cancel(client=issued.client, order=seen_by_cancel, reason="customer_request")

    assert (refused.value.status, refused.value.code) == (409, "conflict")
    assert Order.objects.get().status == "picked_up"


def test_cancel_order_of_another_client_answers_404(world, issued):
    signed(issued, "POST", "/api/v1/orders", order_document())
    other = make_api_client("other marketplace")

    response = signed(other, "POST", "/api/v1/orders/113-4567890-1234567/cancel", {"reason": "x"})

    assert response.status_code == 404
    assert Order.objects.get().status == "received"


def test_wrong_method_answers_405(issued):
    response = signed(issued, "DELETE", "/api/v1/orders")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response["Allow"] == "POST"


def test_unknown_api_path_answers_404_problem_not_html(issued):
    response = signed(issued, "GET", "/api/v1/nothing/here")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_create_api_client_command_prints_one_json_line(capsys):
    call_command("create_api_client", "acme", "--webhook-url", "https://hooks.example/mallrun")

    out = capsys.readouterr().out
    document = json.loads(out)
    client = ApiClient.objects.get(name="acme")
    assert out.count("\n") == 1
    assert set(document) == {"key_id", "secret", "webhook_secret"}
    assert document["key_id"] == client.key_id
    assert decrypt_secret(client.secrets.get().encrypted_secret) == document["secret"]
    assert decrypt_secret(client.webhook_endpoints.get().encrypted_secret) == document["webhook_secret"]


def test_eligibility_feed_answers_the_malls_items(world, issued):
    from retailers.eligibility_sql import eligibility_recompute

    eligibility_recompute(now=timezone.now(), driver_markets={world["mall"].market_id})

    response = signed(issued, "GET", "/api/v1/eligibility?mall=fashion-show")

    body = response.json()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert [(item["seller_id"], item["sku"], item["mall"]) for item in body["items"]] == [
        ("A2SUNSETAPPAREL", "SA-TEE-001", "fashion-show")
    ]
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("mall=nowhere", "mall"),
        ("mall=fashion-show&cursor=bogus", "cursor"),
        ("mall=fashion-show&changed_since=5", "changed_since"),
    ],
)
def test_eligibility_feed_invalid_query_answers_422_naming_it(world, issued, query, field):
    response = signed(issued, "GET", f"/api/v1/eligibility?{query}")

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_create_order_hazmat_heavy_listing_answers_not_eligible_with_every_reason(world, issued):
    world["listing"].hazmat = True
    world["listing"].weight_grams = 30_000
    world["listing"].save()

    response = signed(issued, "POST", "/api/v1/orders", order_document())

    assert response.status_code == 422
    assert response.json()["reasons"] == ["hazmat", "too_heavy"]
    assert Order.objects.count() == 0


# --- driver and proof in the representation -----------------------------------------------------

PHOTO = b"\xff\xd8\xff\xe0proof-photo"


@pytest.fixture
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PORTAL_BASE_URL = "https://portal.example"


def _to_route(world, issued, document=None, **changes):
    """An API order taken by the store to ready, its route built; the online driver Ana Quintero."""
    from drivers import services as dispatch
    from orders.services import order_accept, order_mark_ready, order_record_picked, order_start_picking

    document = document or order_document(**changes)
    assert signed(issued, "POST", "/api/v1/orders", document).status_code == 201
    order = Order.objects.get(marketplace_order_id=document["marketplace_order_id"])
    order_accept(order=order, acting_user=None)
    order_start_picking(order=order, acting_user=None)
    order_record_picked(order=order, acting_user=None, picked={line.pk: line.quantity for line in order.lines.all()})
    order_mark_ready(order=order, acting_user=None, package_count=1)
    driver = world["driver"]
    [route] = dispatch.routes_build_for_mall(mall=world["mall"], now=timezone.now(), time_limit_s=0.1)
    return order, driver, route


def _deliver(world, order, driver, route, pin: str = ""):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from drivers import services as dispatch

    offer = route.offers.get()
    dispatch.handoff_confirm_packages(
        store=world["store"],
        code=offer.pickup_code,
        labels=[p.label_code for p in order.packages.all()],
        acting_user=None,
    )
    dispatch.stop_deliver(stop=route.stops.get(), driver=driver, photo=SimpleUploadedFile("door.jpg", PHOTO), pin=pin)


@pytest.mark.usefixtures("_media")
def test_driver_appears_from_the_routes_acceptance_with_first_name_and_eta_only(world, issued):
    from drivers import services as dispatch

    order, driver, route = _to_route(world, issued)
    offered = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}")

    dispatch.offer_accept(offer=route.offers.get(), driver=driver)
    accepted = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}")

    stop = route.stops.get()
    assert "driver" not in offered.json()
    assert accepted.json()["driver"] == {
        "first_name": "Ana",
        "eta": stop.eta.astimezone(world["mall"].tz).isoformat(timespec="seconds"),
    }
    assert accepted.json()["driver"]["eta"].endswith(("-08:00", "-07:00"))
    assert "proof" not in accepted.json()
    text = accepted.content.decode()
    assert "Quintero" not in text
    assert "5559876" not in text
    assert str(driver.latitude) not in text and str(driver.latitude).rstrip("0") not in text


@pytest.mark.usefixtures("_media")
def test_proof_appears_after_delivery_with_a_signed_photo_link_that_serves_the_photo(world, issued):
    from orders.delivery import delivery_pin_for

    order, driver, route = _to_route(world, issued, requires_pin=True)
    from drivers import services as dispatch

    dispatch.offer_accept(offer=route.offers.get(), driver=driver)
    _deliver(world, order, driver, route, pin=delivery_pin_for(order))

    body = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}").json()
    photo_url = body["proof"]["photo_url"]
    served = Client().get(photo_url.removeprefix("https://portal.example"))

    assert body["status"] == "delivered"
    assert body["driver"]["first_name"] == "Ana"
    assert body["proof"]["pin_verified"] is True
    assert photo_url.startswith("https://portal.example/proof/")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/jpeg"
    assert b"".join(served.streaming_content) == PHOTO
    # The same link in every answer: the feed's delivered event carries it too.
    feed = signed(issued, "GET", "/api/v1/events?limit=500").json()["events"]
    assert feed[-1]["type"] == "order.delivered"
    assert feed[-1]["order"]["proof"] == body["proof"]


@pytest.mark.usefixtures("_media")
def test_proof_photo_link_refuses_a_changed_token_and_expires_after_30_days(world, issued):
    from drivers import services as dispatch

    order, driver, route = _to_route(world, issued)
    dispatch.offer_accept(offer=route.offers.get(), driver=driver)
    _deliver(world, order, driver, route)
    path = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}").json()["proof"]["photo_url"]
    path = path.removeprefix("https://portal.example")
    payload, signature = path.removeprefix("/proof/").split(":", 1)
    forged = "/proof/" + payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + ":" + signature

    assert Client().get(forged).status_code == 404
    with time_machine.travel(timezone.now() + dt.timedelta(days=29), tick=False):
        assert Client().get(path).status_code == 200
    with time_machine.travel(timezone.now() + dt.timedelta(days=30, minutes=1), tick=False):
        assert Client().get(path).status_code == 410


@pytest.mark.usefixtures("_media")
def test_get_and_feed_read_driver_and_proof_in_a_constant_number_of_queries(world, issued, django_assert_num_queries):
    from drivers import services as dispatch

    fresh = order_document(marketplace_order_id="113-0000000-0000009")
    signed(issued, "POST", "/api/v1/orders", fresh)
    order, driver, route = _to_route(world, issued)
    dispatch.offer_accept(offer=route.offers.get(), driver=driver)
    _deliver(world, order, driver, route)
    signed(issued, "GET", "/api/v1/events")  # numbers every event

    # The signature check, the order lookup, the order and its five prefetched parts.
    with django_assert_num_queries(7):
        plain = signed(issued, "GET", "/api/v1/orders/113-0000000-0000009")
    with django_assert_num_queries(7):
        delivered = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}")
    # The feed: the check, the numbering (in a test's transaction it runs in a savepoint, and
    # PostgreSQL takes the sequencer's lock first), the page of events, the orders and their
    # prefetches: for one order or two, the same.
    from django.db import connection

    feed_queries = 10 + (connection.vendor == "postgresql")
    with django_assert_num_queries(feed_queries):
        first = signed(issued, "GET", "/api/v1/events?limit=1")
    with django_assert_num_queries(feed_queries):
        feed = signed(issued, "GET", "/api/v1/events?limit=500")

    assert "driver" not in plain.json() and "proof" in delivered.json()
    assert len(first.json()["events"]) == 1
    assert len({event["order"]["marketplace_order_id"] for event in feed.json()["events"]}) == 2
    assert feed.json()["events"][-1]["order"]["proof"] == delivered.json()["proof"]


@pytest.mark.postgres
@pytest.mark.usefixtures("_media")
def test_create_replay_on_postgresql_answers_driver_and_proof_exactly_like_get(world, issued):
    from drivers import services as dispatch

    document = order_document()
    order, driver, route = _to_route(world, issued, document)
    dispatch.offer_accept(offer=route.offers.get(), driver=driver)
    accepted_replay = signed(issued, "POST", "/api/v1/orders", document)
    accepted_get = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}")
    _deliver(world, order, driver, route)

    replay = signed(issued, "POST", "/api/v1/orders", document)
    read = signed(issued, "GET", f"/api/v1/orders/{order.marketplace_order_id}")

    assert accepted_replay.json() == accepted_get.json()
    assert "driver" in accepted_replay.json() and "proof" not in accepted_replay.json()
    assert replay.status_code == 200
    assert replay.json() == read.json()
    assert set(replay.json()) >= {"driver", "proof"}


def test_openapi_not_eligible_and_feed_reasons_are_the_eligibility_codes():
    from retailers.eligibility import REASON_CODES

    schemas = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]

    not_eligible = schemas["NotEligibleProblemOut"]["properties"]["reasons"]
    assert not_eligible["items"]["enum"] == list(REASON_CODES)
    assert not_eligible["minItems"] == 1
    assert schemas["EligibilityItem"]["properties"]["reasons"]["items"]["enum"] == list(REASON_CODES)
