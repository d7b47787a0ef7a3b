import json
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orders.api.client import MallrunClient, WebhookVerificationError, webhook_verify
from orders.models import FeedEvent
from orders.outbox import deliver_due_webhooks
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed
from orders.tests.webhook_receiver import Receiver


@pytest.mark.django_db(transaction=True)
def test_reference_client_create_is_idempotent_over_the_real_api(live_server):
    make_world()
    issued = make_api_client()
    client = MallrunClient(live_server.url, key_id=issued.client.key_id, secret=issued.secret)
    document = order_document()

    first = client.create_order(document)
    again = client.create_order(document)
    read = client.get_order(document["marketplace_order_id"])

    assert (first.status, again.status, read.status) == (201, 200, 200)
    assert read.document["marketplace_order_id"] == document["marketplace_order_id"]


class _LimitedOnce(BaseHTTPRequestHandler):
    """Answers the first GET with the API's 429 (Retry-After: 1), then 200."""

    seen: list[float] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _LimitedOnce.seen.append(time.monotonic())
        limited = len(_LimitedOnce.seen) == 1
        body = json.dumps(
            {"type": "https://mallrun.example/problems/rate-limited", "title": "Too many requests", "status": 429}
            if limited
            else {"events": [], "next_after": 0}
        ).encode()
        self.send_response(429 if limited else 200)
        if limited:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_reference_client_waits_out_a_429_for_its_retry_after_then_retries():
    _LimitedOnce.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LimitedOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = MallrunClient(f"http://127.0.0.1:{server.server_address[1]}", key_id="mk_x", secret="s", backoff=0.01)

        response = client.events()
    finally:
        server.shutdown()
        server.server_close()

    assert response.status == 200
    assert response.document == {"events": [], "next_after": 0}
    assert len(_LimitedOnce.seen) == 2
    # The backoff alone would wait about 10 ms: the client waited the second Retry-After asked.
    assert _LimitedOnce.seen[1] - _LimitedOnce.seen[0] >= 1.0


def test_reference_client_retries_a_5xx_with_the_same_signed_body():
    receiver = Receiver(statuses=[503, 201]).start()
    try:
        client = MallrunClient(receiver.url.removesuffix("/hooks"), key_id="mk_x", secret="s", backoff=0.01)

        response = client.request("POST", "/api/v1/orders", {"marketplace_order_id": "A-1"})
    finally:
        receiver.stop()

    assert response.status == 201
    assert [json.loads(item.body) for item in receiver.received] == [{"marketplace_order_id": "A-1"}] * 2
    assert all(item.headers["mallrun-signature"].startswith("v1,") for item in receiver.received)


def test_reference_client_gives_up_after_max_tries_on_network_errors():
    client = MallrunClient("http://127.0.0.1:9", key_id="mk_x", secret="s", max_tries=2, backoff=0.01)

    with pytest.raises(urllib.error.URLError):
        client.events()


def test_webhook_sweeper_is_on_the_beat_schedule_every_2_seconds():
    from portal.celery import app

    assert app.conf.beat_schedule["webhook-sweep"] == {"task": "orders.deliver_webhooks", "schedule": 2.0}


@pytest.mark.django_db
def test_reference_client_verifies_a_webhook_mallrun_sent_and_refuses_a_forged_one():
    receiver = Receiver().start()
    try:
        make_world()
        issued = make_api_client(webhook_url=receiver.url)
        assert signed(issued, "POST", "/api/v1/orders", order_document()).status_code == 201
        deliver_due_webhooks()
    finally:
        receiver.stop()
    [request] = receiver.received
    sent_at = int(request.headers["webhook-timestamp"])
    secret = issued.webhook_secret

    event = webhook_verify(secret=secret, headers=request.headers, body=request.body, now=sent_at + 299)

    assert (event["id"], event["type"]) == (FeedEvent.objects.get().event_id, "order.received")
    forged = request.body.replace(b"order.received", b"order.canceled")
    other_secret = make_api_client(name="other", webhook_url="https://other.example/hook").webhook_secret
    unsigned = {**request.headers, "webhook-signature": ""}
    refusals = [
        ("tampered body", secret, request.headers, forged, sent_at),
        ("another secret", other_secret, request.headers, request.body, sent_at),
        ("too late", secret, request.headers, request.body, sent_at + 301),
        ("no signature", secret, unsigned, request.body, sent_at),
    ]
    for case, key, headers, body, now in refusals:
        with pytest.raises(WebhookVerificationError):
            webhook_verify(secret=key, headers=headers, body=body, now=now)
            pytest.fail(f"{case}: verified")
