"""The intake's cheap paths (issue 4 point 10): a replay is answered from one statement, the
decrypted secrets kept per process still obey rotation and revocation."""

import pytest
import time_machine
from django.core.cache import cache, caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.api.ratelimit import BURST
from orders.api.services import api_secret_revoke_old, api_secret_rotate
from orders.models import Order
from orders.services import order_accept
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


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
