import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kombu import Connection

from orders.api.secrets import encrypt_secret
from orders.models import DeliveryStatus, FeedEvent, Order, OrderEvent, WebhookDelivery, WebhookEndpoint
from orders.outbox import RETRY_DELAYS, deliver_due_webhooks, webhook_delivery_replay
from orders.services import order_accept, order_start_picking
from orders.tasks import deliver_webhooks
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed
from orders.tests.webhook_receiver import Receiver


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def _create_order(receiver: Receiver):
    make_world()
    issued = make_api_client(webhook_url=receiver.url)
    response = signed(issued, "POST", "/api/v1/orders", order_document())
    assert response.status_code == 201
    return issued, Order.objects.get()


@pytest.mark.django_db
def test_webhook_is_sent_with_standard_webhooks_headers_and_signature(receiver):
    issued, order = _create_order(receiver)

    tries = deliver_due_webhooks()

    event = FeedEvent.objects.get()
    [request] = receiver.received
    timestamp = request.headers["webhook-timestamp"]
    # The key as every Standard Webhooks library derives it: the base64 after "whsec_", decoded.
    key = base64.b64decode(issued.webhook_secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{event.event_id}.{timestamp}.".encode() + request.body, hashlib.sha256).digest()
    body = json.loads(request.body)
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", issued.webhook_secret)
    assert len(key) == 32
    assert tries == 1
    assert request.headers["webhook-id"] == event.event_id
    assert request.headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert abs(int(timestamp) - time.time()) < 60
    assert (body["seq"], body["id"], body["type"]) == (1, event.event_id, "order.received")
    assert body["order"]["marketplace_order_id"] == order.marketplace_order_id
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SENT


@pytest.mark.django_db
def test_webhook_secret_issued_before_the_standard_form_keeps_signing_with_its_whole_text(receiver):
    # Endpoints made before secrets took the Standard Webhooks form ("whsec_" + unpadded URL-safe
    # base64) are verified by their receivers with the whole text as the key: they keep working.
    issued, _ = _create_order(receiver)
    earlier = "whsec_" + "kZ3-t_ZCqf1pgtRDhZbW9nUA0zMPTS5H2c1Qdxi0Swo"
    WebhookEndpoint.objects.filter(client=issued.client).update(encrypted_secret=encrypt_secret(earlier))

    deliver_due_webhooks()

    [request] = receiver.received
    timestamp = request.headers["webhook-timestamp"]
    message = f"{FeedEvent.objects.get().event_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(earlier.encode(), message, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == "v1," + expected


@pytest.mark.django_db
def test_webhook_non_2xx_answer_is_retried_after_about_5_seconds(receiver):
    receiver.statuses = [500]
    _create_order(receiver)

    deliver_due_webhooks()
    too_early = deliver_due_webhooks()
    delivery = WebhookDelivery.objects.get()
    wait = (delivery.due_at - delivery.last_attempt_at).total_seconds()
    WebhookDelivery.objects.update(due_at=timezone.now())
    deliver_due_webhooks()

    delivery.refresh_from_db()
    assert too_early == 0
    assert wait == 5
    assert [item.status for item in receiver.received] == [500, 200]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)


def test_webhook_retry_schedule_is_5s_1min_10min_1h_then_every_3h_for_24h():
    assert RETRY_DELAYS[:4] == (5, 60, 600, 3600)
    assert set(RETRY_DELAYS[4:]) == {3 * 3600}
    assert sum(RETRY_DELAYS[4:]) == 24 * 3600


@pytest.mark.django_db
def test_webhook_after_the_last_try_is_failed_and_an_operator_can_replay_it(receiver):
    receiver.statuses = [503]
    _create_order(receiver)
    WebhookDelivery.objects.update(attempts=len(RETRY_DELAYS))

    deliver_due_webhooks()
    failed = WebhookDelivery.objects.get()
    replayed = webhook_delivery_replay(deliveries=[failed])
    deliver_due_webhooks()

    failed.refresh_from_db()
    assert replayed == 1
    assert [item.status for item in receiver.received] == [503, 200]
    assert (failed.status, failed.attempts) == (DeliveryStatus.SENT, 1)


@pytest.mark.django_db
def test_webhook_for_a_rolled_back_change_is_never_sent(receiver):
    _create_order(receiver)
    deliver_due_webhooks()
    order = Order.objects.get()

    with pytest.raises(RuntimeError), transaction.atomic():
        order_accept(order=order, acting_user=None)
        raise RuntimeError("the rest of the change failed")
    deliver_due_webhooks()

    assert [json.loads(item.body)["type"] for item in receiver.received] == ["order.received"]
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_webhook_events_of_one_order_are_delivered_in_seq_order(receiver):
    receiver.statuses = [500]
    _create_order(receiver)
    order = Order.objects.get()
    order_accept(order=order, acting_user=None)
    order_start_picking(order=order, acting_user=None)

    deliver_due_webhooks()
    first_round = len(receiver.received)
    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).update(due_at=timezone.now())
    deliver_due_webhooks()

    types = [json.loads(item.body)["type"] for item in receiver.received]
    assert first_round == 1
    assert types == ["order.received", "order.received", "order.accepted", "order.picking"]
    assert [json.loads(item.body)["seq"] for item in receiver.received[1:]] == [1, 2, 3]


def _test_database_url() -> str:
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_webhook_worker_killed_mid_send_loses_nothing_and_2xx_receiver_gets_each_event_once(tmp_path: Path):
    receiver = Receiver(hang_first=threading.Event()).start()
    try:
        _create_order(receiver)
        queue = f"test-{uuid.uuid4().hex}"
        folder = tmp_path / "var" / "broker" / "queue"
        folder.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env |= {"DATABASE_URL": _test_database_url(), "MALLRUN_VAR_DIR": str(tmp_path / "var")}
        command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool", "solo"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
        log = tmp_path / "worker.log"
        with log.open("w") as out:
            worker = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            options = {
                "data_folder_in": str(folder),
                "data_folder_out": str(folder),
                "control_folder": str(folder.parent / "control"),
                "store_processed": False,
            }
            with Connection("filesystem://", transport_options=options) as broker:
                deliver_webhooks.apply_async(queue=queue, connection=broker)
            assert receiver.got_request.wait(60), log.read_text()

            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=20)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        receiver.hang_first.set()
        deadline = time.monotonic() + 20
        while WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() and time.monotonic() < deadline:
            deliver_due_webhooks()
            time.sleep(0.2)
        deliver_due_webhooks()
        deliver_due_webhooks()

        delivery = WebhookDelivery.objects.get()
        event_id = FeedEvent.objects.get().event_id
        assert [item.headers["webhook-id"] for item in receiver.received] == [event_id, event_id]
        assert receiver.ok_ids() == [event_id]
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)
    finally:
        receiver.stop()


# --- order.delayed and order.returned: the contract's events from dispatch and the return trip ---


def _ready_api_order(*, deliver_in: dt.timedelta, miles_north: float = 2):
    from drivers.tests.factories import make_ready_order

    world = make_world(on_hand=10)
    issued = make_api_client(webhook_url="https://hooks.example/mallrun")
    mall = world["mall"]
    order = make_ready_order(
        store=world["store"],
        lines=[(world["listing"], 1)],
        deliver_in=deliver_in,
        latitude=mall.latitude + Decimal(f"{miles_north / 69:.6f}"),
        longitude=mall.longitude,
        api_client=issued.client,
    )
    return issued, mall, order


def _feed_types(issued) -> list[str]:
    return [event["type"] for event in signed(issued, "GET", "/api/v1/events").json()["events"]]


@pytest.mark.django_db
def test_order_delayed_reaches_feed_and_webhooks_when_nobody_takes_the_route_before_the_deadline():
    from drivers import services as dispatch
    from drivers.models import RouteStatus

    issued, mall, order = _ready_api_order(deliver_in=dt.timedelta(minutes=40))
    [route] = dispatch.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    later = timezone.now() + dt.timedelta(minutes=30)

    dispatch.offers_sweep(now=later)
    route.refresh_from_db()
    events = signed(issued, "GET", "/api/v1/events").json()["events"]

    delayed = OrderEvent.objects.get(order=order, type="order.delayed")
    assert route.status == RouteStatus.AT_RISK
    assert (delayed.from_status, delayed.to_status, delayed.at) == ("ready", "ready", later)
    assert delayed.reason == route.alert
    assert [event["type"] for event in events] == [
        "order.received",
        "order.accepted",
        "order.picking",
        "order.ready",
        "order.delayed",
    ]
    assert events[-1]["order"]["status"] == "ready"
    # The timeline lists status changes only: a delay is not one.
    timeline = [entry["status"] for entry in events[-1]["order"]["timeline"]]
    assert timeline == ["received", "accepted", "picking", "ready"]
    feed_event = FeedEvent.objects.get(type="order.delayed")
    assert feed_event.occurred_at == later
    assert list(WebhookDelivery.objects.filter(event=feed_event).values_list("status", flat=True)) == ["pending"]


@pytest.mark.django_db
def test_order_delayed_is_recorded_once_while_the_order_stays_in_its_status():
    from orders.delivery import orders_flag_delayed

    _issued, _mall, order = _ready_api_order(deliver_in=dt.timedelta(hours=3))

    first = orders_flag_delayed(order_ids=[order.pk], reason="Nobody took the route yet")
    second = orders_flag_delayed(order_ids=[order.pk], reason="Nobody took the route yet")

    assert (first, second) == ([order.pk], [])
    assert FeedEvent.objects.filter(type="order.delayed").count() == 1


@pytest.mark.django_db
def test_order_delayed_when_dispatch_cannot_route_the_order_at_all():
    from drivers import services as dispatch
    from drivers.models import RouteStatus

    issued, mall, order = _ready_api_order(deliver_in=dt.timedelta(hours=3), miles_north=15)

    [route] = dispatch.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)

    assert route.status == RouteStatus.AT_RISK
    assert OrderEvent.objects.get(order=order, type="order.delayed").reason == (
        f"Order {order.number} cannot be routed: the address is outside the mall's delivery radius."
    )
    assert _feed_types(issued)[-1] == "order.delayed"


@pytest.mark.django_db
def test_order_undeliverable_and_returned_reach_the_feed_and_webhooks_but_returning_does_not():
    from orders.delivery import order_confirm_returned, order_mark_undeliverable, order_pick_up

    issued, _mall, order = _ready_api_order(deliver_in=dt.timedelta(hours=3))
    order_pick_up(order=order, acting_user=None)
    order_mark_undeliverable(order=order, acting_user=None, reason="Nobody home")
    order_confirm_returned(order=order, acting_user=None)

    events = signed(issued, "GET", "/api/v1/events").json()["events"]

    assert [event["type"] for event in events][-3:] == ["order.picked_up", "order.undeliverable", "order.returned"]
    assert events[-1]["order"]["status"] == "returned"
    assert [entry["status"] for entry in events[-1]["order"]["timeline"]][-3:] == [
        "undeliverable",
        "returning",
        "returned",
    ]
    returned = FeedEvent.objects.get(type="order.returned")
    assert WebhookDelivery.objects.filter(event=returned).count() == 1
    assert not FeedEvent.objects.filter(type="order.returning").exists()
