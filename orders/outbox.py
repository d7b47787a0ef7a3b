"""The marketplace's event feed and the webhook outbox.

Feed events and their webhook deliveries are written in the same transaction as the change that
causes them (`record_feed_event`, called from `orders.services._record_event`), so a rolled-back
change leaves nothing to send. `seq` is handed out afterwards by `sequence_events`, under one
lock, only to events whose transaction has committed: a poller reading `seq > after` therefore
never skips an event that committed late, and never sees one twice."""

import datetime as dt
import json
import logging
import os
import time
import urllib.error
import urllib.request

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from orders.api.representation import rfc3339
from orders.api.secrets import decrypt_secret, sign, webhook_key
from orders.api.webhook_addresses import opener as webhook_opener
from orders.api.webhook_addresses import url_problem
from orders.models import DeliveryStatus, FeedEvent, Order, WebhookDelivery, WebhookEndpoint
from portal.prepared import Prepared, prepare

logger = logging.getLogger(__name__)

FEED_TYPES = frozenset(
    {
        "order.received",
        "order.accepted",
        "order.picking",
        "order.ready",
        "order.picked_up",
        "order.delivered",
        "order.rejected",
        "order.short",
        "order.cancelled",
        "order.delayed",
        "order.undeliverable",
        "order.returned",
    }
)
# Seconds to wait after the 1st, 2nd, … failed try: about 5 s, 1 min, 10 min, 1 h, then every
# 3 h for 24 h. After the last one the delivery is failed and waits for an operator's replay.
RETRY_DELAYS = (5, 60, 600, 3600) + (3 * 3600,) * 8
SEND_TIMEOUT_SECONDS = 10
_SEQUENCE_LOCK = 0x4D52_5345_51  # pg_advisory_xact_lock key: "MRSEQ"

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_event_id(now: dt.datetime | None = None) -> str:
    """`evt_` + a ULID: 48 bits of milliseconds then 80 random bits, sortable by time."""
    millis = int((now or timezone.now()).timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "evt_" + "".join(reversed(chars))


def record_feed_event(*, order: Order, type: str, at: dt.datetime) -> FeedEvent | None:
    """Side effects: one FeedEvent and one WebhookDelivery per active endpoint of the order's
    client, in the caller's transaction. Orders without a marketplace client have no feed."""
    # A store's training order (retailers.onboarding) never reaches the marketplace.
    if order.api_client_id is None or order.is_training or type not in FEED_TYPES:
        return None
    event = FeedEvent.objects.create(
        event_id=new_event_id(at), client_id=order.api_client_id, order=order, type=type, occurred_at=at
    )
    endpoints = WebhookEndpoint.objects.filter(client_id=order.api_client_id, is_active=True).values_list(
        "pk", flat=True
    )
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint_id=endpoint_id, order=order, due_at=at) for endpoint_id in endpoints
    )
    return event


_SEQUENCE_SQL = """
UPDATE orders_feedevent SET seq = numbered.base + numbered.rn
FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS rn,
           (SELECT COALESCE(MAX(seq), 0) FROM orders_feedevent) AS base
    FROM orders_feedevent WHERE seq IS NULL
) AS numbered
WHERE orders_feedevent.id = numbered.id
"""


# Prepared (portal.prepared): planning the numbering costs more than running it.
SEQUENCE = Prepared("mallrun_sequence", "", _SEQUENCE_SQL)
_ORDER_LAST_SEQ = Prepared(
    "mallrun_order_last_seq", "bigint", "SELECT MAX(seq) FROM orders_feedevent WHERE order_id = $1"
)


def sequence_events() -> int:
    """Gives the next `seq` numbers, in id order, to every committed event that has none.

    One sequencer at a time (an advisory lock held to commit; SQLite serializes writers anyway),
    and each one sees everything its predecessors numbered: seq values become visible in
    increasing order, whatever order the events' own transactions committed in.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_sequencer(cursor)
        cursor.execute(_SEQUENCE_SQL)
        return cursor.rowcount


def _lock_sequencer(cursor) -> None:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCE_LOCK])


def sequence_events_for_answer(order_id: int) -> int | None:
    """`sequence_events`, run by an answer that follows a committed write, so that the answer
    carries the `seq` of the write's event: returns the order's last `seq` (None only when the
    order has no feed event at all). Same lock and the same numbering as the sweeper, so the
    feed's guarantee holds. Call it after the write's transaction has committed.

    On PostgreSQL it is one round trip: the three statements go as one simple-protocol query,
    which runs them in one implicit transaction (the advisory lock is held to its end) and gives
    each statement its own snapshot, so the numbering sees every number given before the lock
    was granted, exactly as in sequence_events."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            prepare(cursor, SEQUENCE, _ORDER_LAST_SEQ)
            cursor.execute(
                f"SELECT pg_advisory_xact_lock({_SEQUENCE_LOCK}); {SEQUENCE.execute()}; {_ORDER_LAST_SEQ.execute(1)}",
                [order_id],
            )
            cursor.nextset()
            cursor.nextset()
            return cursor.fetchone()[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SEQUENCE_SQL)
        cursor.execute("SELECT MAX(seq) FROM orders_feedevent WHERE order_id = %s", [order_id])
        return cursor.fetchone()[0]


def event_payload(event: FeedEvent, order_document: dict) -> dict:
    return {
        "seq": event.seq,
        "id": event.event_id,
        "type": event.type,
        "occurred_at": rfc3339(event.occurred_at),
        "order": order_document,
    }


def webhook_headers(*, secret: str, event_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers: signature over `{id}.{timestamp}.{body}`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = sign(webhook_key(secret), f"{event_id}.{timestamp}.".encode() + body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """POSTs; returns None on a 2xx answer, else what went wrong."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - operator-set URL
    problem = url_problem(url)  # an endpoint saved before the rule, or changed behind the admin
    if problem is not None:
        return problem
    try:
        # Public peers only, no redirects (orders.api.webhook_addresses).
        with webhook_opener().open(request, timeout=SEND_TIMEOUT_SECONDS) as response:
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"{type(error).__name__}: {error}"[:500]


def _deliver_one(now: dt.datetime) -> bool:
    """Claims one due delivery and sends it. The row stays locked while it is sent: a worker that
    dies mid-send drops its connection, the lock goes with it and the row is still pending, so
    another worker sends it. Returns False when nothing was due."""
    from orders.api.representation import represent

    earlier_pending = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        order_id=OuterRef("order_id"),
        status=DeliveryStatus.PENDING,
        event__seq__lt=OuterRef("event__seq"),
    )
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=DeliveryStatus.PENDING, due_at__lte=now, event__seq__isnull=False)
            # Events of one order go out in seq order: a later one waits for the earlier ones.
            .exclude(Exists(earlier_pending))
            .select_related("event", "endpoint")
            .order_by("due_at", "event__seq")
            .first()
        )
        if delivery is None:
            return False
        event, endpoint = delivery.event, delivery.endpoint
        secret = decrypt_secret(endpoint.encrypted_secret)
        if secret is None or not endpoint.is_active:
            error = "endpoint inactive" if not endpoint.is_active else "endpoint secret cannot be decrypted"
        else:
            body = json.dumps(event_payload(event, represent(event.order_id))).encode()
            error = _post(endpoint.url, body, webhook_headers(secret=secret, event_id=event.event_id, body=body))
        attempted = timezone.now()
        delivery.attempts += 1
        delivery.last_attempt_at = attempted
        if error is None:
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = attempted
            delivery.last_error = ""
        elif delivery.attempts > len(RETRY_DELAYS):
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = error
        else:
            delivery.due_at = attempted + dt.timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
            delivery.last_error = error
        delivery.save(update_fields=["status", "attempts", "last_attempt_at", "sent_at", "last_error", "due_at"])
        if error is not None:
            logger.info("webhook %s to %s failed (try %s): %s", event.event_id, endpoint.url, delivery.attempts, error)
    return True


def deliver_due_webhooks(*, limit: int = 200) -> int:
    """The sweeper: numbers committed events, then sends due deliveries until none is left (or
    `limit`). Returns how many tries were made. Safe to run in any number of workers at once."""
    sequence_events()
    tries = 0
    while tries < limit and _deliver_one(timezone.now()):
        tries += 1
    return tries


@transaction.atomic
def webhook_delivery_replay(*, deliveries: list[WebhookDelivery]) -> int:
    """An operator sends failed deliveries again: they are pending and due now, with a fresh
    retry schedule. Side effects: WebhookDelivery status, attempts, due_at."""
    return WebhookDelivery.objects.filter(
        pk__in=[delivery.pk for delivery in deliveries], status=DeliveryStatus.FAILED
    ).update(status=DeliveryStatus.PENDING, attempts=0, due_at=timezone.now(), last_error="")
