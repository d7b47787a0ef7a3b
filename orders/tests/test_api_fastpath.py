"""The intake's cheap paths (issue 4 point 10): a replay is answered from one statement, the
decrypted secrets kept per process still obey rotation and revocation, and the intake's writes
are one statement on PostgreSQL that writes everything or nothing."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.api.ratelimit import BURST
from orders.api.services import api_secret_revoke_old, api_secret_rotate
from orders.models import FeedEvent, Order, OrderEvent, OrderLine, WebhookDelivery, WebhookEndpoint
from orders.services import NewLine, order_accept, order_receive
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed
from portal.errors import ActionRefused
from portal.tests.factories import make_listing, make_stock
from retailers.models import Stock

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_create_order_replay_on_postgresql_reads_in_one_query_and_answers_like_get():
    make_world()
    issued = make_api_client()
    document = order_document()
    signed(issued, "POST", "/api/v1/orders", document)
    order_accept(order=Order.objects.get(), acting_user=None)
    expected = signed(issued, "GET", f"/api/v1/orders/{document['marketplace_order_id']}").json()

    with CaptureQueriesContext(connection) as queries:
        response = signed(issued, "POST", "/api/v1/orders", document)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == expected
    assert [entry["status"] for entry in response.json()["timeline"]] == ["received", "accepted"]
    # The key's secrets with the order, its lines, packages and timeline alongside.
    assert len(queries.captured_queries) == 1


def test_create_order_replay_with_another_body_is_still_a_conflict():
    make_world()
    issued = make_api_client()
    document = order_document()
    signed(issued, "POST", "/api/v1/orders", document)

    response = signed(issued, "POST", "/api/v1/orders", {**document, "requires_pin": True})

    assert response.status_code == 409
    assert response.json()["type"] == "https://mallrun.example/problems/idempotency-conflict"


def test_create_order_replay_by_another_client_is_still_a_conflict():
    make_world()
    issued = make_api_client()
    other = make_api_client("other marketplace")
    document = order_document()
    signed(issued, "POST", "/api/v1/orders", document)

    response = signed(other, "POST", "/api/v1/orders", document)

    assert response.status_code == 409
    assert Order.objects.get().api_client == issued.client


def test_signature_with_a_revoked_old_secret_answers_401_after_it_was_accepted():
    make_world()
    issued = make_api_client()
    assert signed(issued, "GET", "/api/v1/events").status_code == 200
    new_secret = api_secret_rotate(client=issued.client)
    api_secret_revoke_old(client=issued.client)

    old = signed(issued, "GET", "/api/v1/events")
    new = signed(issued, "GET", "/api/v1/events", secret=new_secret)

    assert old.status_code == 401
    assert new.status_code == 200


def test_create_order_replay_of_a_revoked_client_answers_401():
    make_world()
    issued = make_api_client()
    document = order_document()
    assert signed(issued, "POST", "/api/v1/orders", document).status_code == 201
    issued.client.revoked = True
    issued.client.save(update_fields=["revoked"])

    response = signed(issued, "POST", "/api/v1/orders", document)

    assert response.status_code == 401


def test_create_order_counts_each_request_once_against_the_rate_limit(settings):
    # The embedded default's bucket, on a frozen clock: no token comes back during the test.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    make_world()
    issued = make_api_client()
    document = order_document()

    with time_machine.travel(timezone.now(), tick=False):
        signed(issued, "POST", "/api/v1/orders", document)
        signed(issued, "POST", "/api/v1/orders", document)
        signed(issued, "POST", "/api/v1/orders", {"marketplace_order_id": "X-1"})
        tokens, _at = caches["default"].get(f"api-rate:{issued.client.key_id}")

    assert tokens == BURST - 3


# --- The intake's write: one statement on PostgreSQL, all or nothing on both databases.


def _two_line_world(*, second_on_hand: int, second_stock: bool = True):
    world = make_world(on_hand=5)
    second = make_listing(seller=world["seller"], seller_sku="SA-CAP-002")
    if second_stock:
        make_stock(store=world["store"], listing=second, on_hand=second_on_hand)
    return world, second


def _receive(world, second, *, quantities=(2, 2), client=None, order_id="113-0000000-0000001"):
    now = timezone.now()
    return order_receive(
        store=world["store"],
        marketplace_order_id=order_id,
        placed_at=now,
        deliver_by=now + dt.timedelta(hours=4),
        customer_name="Jamie D.",
        lines=[
            NewLine(listing=world["listing"], quantity=quantities[0], unit_price_cents=2999),
            NewLine(listing=second, quantity=quantities[1], unit_price_cents=1500),
        ],
        address_line1="3355 S Las Vegas Blvd",
        city="Las Vegas",
        state="NV",
        postal_code="89109",
        latitude=36.1212,
        longitude=-115.1697,
        api_client=client,
        api_body_sha256="ab" * 32,
    )


def _nothing_written(world, second) -> None:
    assert Order.objects.count() == 0
    assert OrderLine.objects.count() == 0
    assert OrderEvent.objects.count() == 0
    assert FeedEvent.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0
    assert list(Stock.objects.order_by("listing_id").values_list("listing__seller_sku", "reserved")) == [
        ("SA-TEE-001", 0),
        *([("SA-CAP-002", 0)] if Stock.objects.filter(listing=second).exists() else []),
    ]


def test_order_receive_short_on_its_last_line_writes_nothing_and_reserves_nothing():
    world, second = _two_line_world(second_on_hand=1)

    with pytest.raises(ActionRefused) as refused:
        _receive(world, second)

    assert refused.value.code == "out_of_stock"
    _nothing_written(world, second)


def test_order_receive_whose_stock_row_is_gone_writes_nothing():
    world, second = _two_line_world(second_on_hand=0, second_stock=False)

    with pytest.raises(ActionRefused) as refused:
        _receive(world, second)

    assert refused.value.code == "out_of_stock"
    _nothing_written(world, second)


def test_order_receive_for_a_marketplace_client_writes_every_row():
    world, second = _two_line_world(second_on_hand=3)
    issued = make_api_client(webhook_url="https://marketplace.example/hooks")
    WebhookEndpoint.objects.create(
        client=issued.client, url="https://marketplace.example/old", encrypted_secret="x", is_active=False
    )

    order = _receive(world, second, quantities=(2, 3), client=issued.client)

    stored = Order.objects.get()
    assert (order.pk, order._state.adding) == (stored.pk, False)
    assert (stored.status, stored.api_client_id, stored.api_body_sha256) == ("received", issued.client.pk, "ab" * 32)
    assert (stored.latitude, stored.longitude) == (Decimal("36.121200"), Decimal("-115.169700"))
    assert stored.prep_due_at == stored.placed_at + dt.timedelta(minutes=world["store"].prep_sla_minutes)
    assert list(
        stored.lines.order_by("listing__seller_sku").values_list(
            "listing__seller_sku", "quantity", "reserved_quantity", "picked", "unit_price_cents"
        )
    ) == [("SA-CAP-002", 3, 3, 0, 1500), ("SA-TEE-001", 2, 2, 0, 2999)]
    assert list(Stock.objects.order_by("listing__seller_sku").values_list("listing__seller_sku", "reserved")) == [
        ("SA-CAP-002", 3),
        ("SA-TEE-001", 2),
    ]
    event = OrderEvent.objects.get()
    assert (event.order_id, event.type, event.from_status, event.to_status, event.actor_id, event.data) == (
        stored.pk,
        "order.received",
        "",
        "received",
        None,
        {},
    )
    assert event.actor_label == "marketplace"
    feed_event = FeedEvent.objects.get()
    assert (feed_event.order_id, feed_event.client_id, feed_event.type, feed_event.seq) == (
        stored.pk,
        issued.client.pk,
        "order.received",
        None,
    )
    assert feed_event.occurred_at == event.at == stored.created_at
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event_id, delivery.order_id, delivery.status, delivery.attempts, delivery.due_at) == (
        feed_event.pk,
        stored.pk,
        "pending",
        0,
        event.at,
    )
    assert delivery.endpoint.url == "https://marketplace.example/hooks"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_receive_on_postgresql_outside_a_transaction_is_one_statement():
    world, second = _two_line_world(second_on_hand=3)
    # The first intake of a database session prepares the statement.
    _receive(world, second, quantities=(1, 1), order_id="WARM-1")

    with CaptureQueriesContext(connection) as queries:
        _receive(world, second, quantities=(1, 1))

    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("EXECUTE mallrun_receive (")
    assert Order.objects.get(marketplace_order_id="113-0000000-0000001").lines.count() == 2
    assert list(Stock.objects.order_by("listing__seller_sku").values_list("reserved", flat=True)) == [2, 2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_receive_on_postgresql_outside_a_transaction_short_writes_nothing():
    world, second = _two_line_world(second_on_hand=1)

    with pytest.raises(ActionRefused):
        _receive(world, second)

    _nothing_written(world, second)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_create_order_on_postgresql_reads_once_and_writes_once():
    # Outside a test transaction, as a served request runs.
    make_world()
    issued = make_api_client()
    # The first create of a database session prepares the statements it keeps.
    assert signed(issued, "POST", "/api/v1/orders", order_document(marketplace_order_id="WARM-1")).status_code == 201

    with CaptureQueriesContext(connection) as queries:
        response = signed(issued, "POST", "/api/v1/orders", order_document(marketplace_order_id="113-1"))

    assert response.status_code == 201
    statements = [entry["sql"] for entry in queries.captured_queries]
    # The key with the order id's replay row first; the intake's reads in one statement; its
    # writes in one statement after them. (What else runs, e.g. the seq numbering of the new
    # event, is not the intake's.)
    assert statements[0].startswith("EXECUTE mallrun_secrets_and_replay ")
    reads = [n for n, sql in enumerate(statements) if sql.startswith("EXECUTE mallrun_intake (")]
    writes = [n for n, sql in enumerate(statements) if sql.startswith("EXECUTE mallrun_receive (")]
    assert (len(reads), len(writes)) == (1, 1)
    assert reads[0] < writes[0]
    assert not any(sql.startswith(("BEGIN", "SAVEPOINT", "INSERT", "UPDATE")) for sql in statements)
    # The feed's numbering goes with the writes: three round trips in all, and the answer
    # carries the seq the new event got.
    assert len(statements) == 3
    assert "pg_advisory_xact_lock" in statements[writes[0]]
    event = FeedEvent.objects.get(order__marketplace_order_id="113-1")
    assert event.seq is not None
    assert response.json()["last_event_seq"] == event.seq
    assert Order.objects.get(marketplace_order_id="113-1").lines.get().reserved_quantity == 2


# --- The intake's reads give placement what the eligibility engine and the drivers app read.


def test_intake_reads_count_capacity_and_driver_supply_as_their_owners_do():
    from drivers.selectors import markets_with_driver_supply
    from drivers.tests.factories import make_driver
    from orders.api.reads import intake_reads
    from portal.tests.factories import make_mall, make_order, make_store
    from retailers.eligibility_sql import orders_last_hour_by_store

    world = make_world(on_hand=50)
    second_store = make_store(seller=world["seller"], mall=world["mall"], unit="L1-100")
    make_stock(store=second_store, listing=world["listing"], on_hand=5)
    other_mall = make_mall(slug="other-mall")
    make_driver(market=other_mall.market, online=False)
    expired = make_driver(market=other_mall.market, online=True, documents_valid_until=dt.date(2026, 1, 1))
    with time_machine.travel(dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC), tick=False):
        now = timezone.now()
        for minutes_ago in (5, 30, 59, 61, 120):
            order = make_order(store=world["store"], lines=[(world["listing"], 1)])
            Order.objects.filter(pk=order.pk).update(placed_at=now - dt.timedelta(minutes=minutes_ago))
        cancelled = make_order(store=second_store, lines=[(world["listing"], 1)])
        Order.objects.filter(pk=cancelled.pk).update(status="cancelled", placed_at=now - dt.timedelta(minutes=10))
        make_order(store=second_store, lines=[(world["listing"], 1)])
        # A store's onboarding training order takes no capacity slot and is no open order.
        training = make_order(store=second_store)
        Order.objects.filter(pk=training.pk).update(is_training=True, placed_at=now - dt.timedelta(minutes=15))

        reads = intake_reads(seller_id="A2SUNSETAPPAREL", skus=["SA-TEE-001"], mall_slug="fashion-show", now=now)
        everywhere = intake_reads(seller_id="A2SUNSETAPPAREL", skus=["SA-TEE-001"], mall_slug=None, now=now)

        expected_counts = orders_last_hour_by_store(store_ids=[world["store"].pk, second_store.pk], now=now)
        expected_markets = markets_with_driver_supply(now=now)
    assert expected_counts == {world["store"].pk: 3, second_store.pk: 1}
    assert expected_markets == {world["mall"].market_id}
    assert expired.online_market_id == other_mall.market_id
    for got in (reads, everywhere):
        assert got.orders_last_hour == expected_counts
        assert got.driver_markets == expected_markets
        assert [store.pk for store in got.stores] == [world["store"].pk, second_store.pk]
        assert got.stock == {(world["store"].pk, world["listing"].pk): 45, (second_store.pk, world["listing"].pk): 3}
        # Both stores share the mall: their open orders are counted (the cancelled one is not open).
        assert got.open_orders == {world["store"].pk: 5, second_store.pk: 1}
        assert got.hours == {
            store.pk: {row.weekday: (row.opens_at, row.closes_at) for row in store.hours.all()}
            for store in (world["store"], second_store)
        }
        assert sorted(got.hours[world["store"].pk]) == list(range(7))
        assert got.stores[0].mall == world["mall"]
    assert [mall.slug for mall in reads.malls] == ["fashion-show"]
    assert [mall.slug for mall in everywhere.malls] == ["fashion-show", "other-mall"]


def test_create_order_answer_is_the_representation_a_read_gives_right_after():
    make_world()
    issued = make_api_client()
    document = order_document()

    created = signed(issued, "POST", "/api/v1/orders", document)
    read = signed(issued, "GET", f"/api/v1/orders/{document['marketplace_order_id']}")

    assert created.status_code == 201
    assert created["Content-Type"] == read["Content-Type"] == "application/json; charset=utf-8"
    assert created.json() == read.json()
    assert created.json()["last_event_seq"] == FeedEvent.objects.get().seq


@pytest.mark.postgres
def test_intake_reads_count_the_hour_only_up_to_the_stores_hourly_capacity():
    from orders.api.reads import intake_reads
    from portal.tests.factories import make_order
    from retailers.models import Store

    world = make_world(on_hand=50)
    Store.objects.filter(pk=world["store"].pk).update(hourly_capacity=2)
    for _ in range(3):
        make_order(store=world["store"], lines=[(world["listing"], 1)])

    reads = intake_reads(seller_id="A2SUNSETAPPAREL", skus=["SA-TEE-001"], mall_slug="fashion-show")

    # Three orders in the hour, counted as far as the rule looks: the store is at capacity.
    assert reads.orders_last_hour == {world["store"].pk: 2}
    response = signed(make_api_client(), "POST", "/api/v1/orders", order_document(marketplace_order_id="113-CAP"))
    assert response.status_code == 422
    assert response.json()["reasons"] == ["store_at_capacity"]
