"""Every write to orders. Each status change checks the declared lifecycle, applies itself with
a conditional UPDATE (… WHERE status = <expected>) so that two clicks, two staff members or two
workers cannot both win, and records an OrderEvent with the actor and the time."""

import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.utils import timezone

from orders.lifecycle import MOVE, STANDING, OrderStatus, sources_of
from orders.models import (
    ApiClient,
    DeliveryStatus,
    FeedEvent,
    Order,
    OrderEvent,
    OrderLine,
    Package,
    WebhookDelivery,
    new_label_code,
)
from orders.outbox import _SEQUENCE_LOCK, FEED_TYPES, SEQUENCE, new_event_id, record_feed_event
from portal.actors import actor_label_for
from portal.errors import ActionRefused
from portal.jsonrows import new_row_document, row_document
from portal.prepared import Prepared, prepare
from retailers.eligibility_hooks import eligibility_after_order_change
from retailers.models import EligibilityRequestKind, Listing, Stock, Store

S = OrderStatus
MAX_PACKAGES = 20


def _record_event(
    *,
    order: Order,
    type: str,
    from_status: str,
    to_status: str,
    acting_user: AbstractBaseUser | None,
    actor_label: str | None,
    at: dt.datetime,
    reason: str = "",
    data: Mapping | None = None,
) -> OrderEvent:
    event = OrderEvent.objects.create(
        order=order,
        type=type,
        from_status=from_status,
        to_status=to_status,
        actor=acting_user if acting_user is not None and acting_user.is_authenticated else None,
        actor_label=actor_label or actor_label_for(acting_user),
        at=at,
        reason=reason,
        data=dict(data or {}),
    )
    # The marketplace's feed event and webhook outbox rows, in this same transaction.
    record_feed_event(order=order, type=type, at=at)
    return event


def _standing(order_id: int, status: str | None) -> str:
    """What the order is now, for a refusal: "was cancelled by marketplace (Shopper cancelled)",
    "is ready for pickup". A cancel or rejection says who and why, so staff know it is final."""
    if status is None:
        return "is gone"
    standing = STANDING[status]
    if status in {S.CANCELLED, S.REJECTED}:
        event = (
            OrderEvent.objects.filter(order_id=order_id, type=f"order.{status}")
            .order_by("-at", "-pk")
            .values_list("actor_label", "reason")
            .first()
        )
        if event is not None:
            who, why = event
            standing += (f" by {who}" if who else "") + (f" ({why})" if why else "")
    return standing


def _transition(
    *,
    order: Order,
    to: str,
    acting_user: AbstractBaseUser | None,
    actor_label: str | None = None,
    reason: str = "",
    data: Mapping | None = None,
    **fields: object,
) -> OrderEvent:
    """Moves `order` to `to` if, and only if, it is still in the status the caller saw; updates
    the instance and returns the event row."""
    expected = order.status
    if expected not in sources_of(to):
        if expected == to:  # a second tap, or a colleague got there first
            message = f"Order {order.number} {STANDING[expected]} already."
        else:
            message = f"Order {order.number} {_standing(order.pk, expected)}, so it cannot be {MOVE[to]}."
        raise ActionRefused(message, code="illegal-transition")
    now = timezone.now()
    changed = Order.objects.filter(pk=order.pk, status=expected).update(
        status=to, status_changed_at=now, updated_at=now, **fields
    )
    if changed != 1:
        current = Order.objects.filter(pk=order.pk).values_list("status", flat=True).first()
        raise ActionRefused(
            f"Order {order.number} was changed by someone else a moment ago: it {_standing(order.pk, current)}.",
            code="conflict",
        )
    event = _record_event(
        order=order,
        type=f"order.{to}",
        from_status=expected,
        to_status=to,
        acting_user=acting_user,
        actor_label=actor_label,
        at=now,
        reason=reason,
        data=data,
    )
    order.status = to
    order.status_changed_at = now
    order.updated_at = now
    for name, value in fields.items():
        setattr(order, name, value)
    return event


def _lock_order(order: Order) -> None:
    """Locks the order's row before its lines are checked: a pick change committed meanwhile is
    then read, and one started later waits for this change (and is refused once it left picking).
    Without it, a check could pass on quantities another staff member was changing."""
    list(Order.objects.select_for_update().filter(pk=order.pk).values_list("pk"))


def _release_reservations(*, order: Order, keep_picked: bool) -> None:
    """Gives back reserved stock: all of it, or (keep_picked) only the units that were not
    picked. Units missing from the shelf also leave on-hand stock, since they are not there.
    Queues the eligibility recompute of the released listings after commit."""
    released = []
    for line in order.lines.select_for_update().all():
        keep = line.picked if keep_picked else 0
        release = line.reserved_quantity - keep
        if release <= 0:
            continue
        gone = release if keep_picked else 0
        Stock.objects.filter(store_id=order.store_id, listing_id=line.listing_id).update(
            reserved=F("reserved") - release, on_hand=F("on_hand") - gone
        )
        OrderLine.objects.filter(pk=line.pk).update(reserved_quantity=keep)
        released.append(line.listing_id)
    if released:
        eligibility_after_order_change(store_id=order.store_id, listing_ids=released)


@dataclass(frozen=True)
class NewLine:
    listing: Listing
    quantity: int
    unit_price_cents: int = 0


def order_receive(
    *,
    store: Store,
    marketplace_order_id: str,
    placed_at: dt.datetime,
    deliver_by: dt.datetime,
    customer_name: str,
    lines: Iterable[NewLine],
    address_line1: str,
    city: str,
    state: str,
    postal_code: str,
    customer_phone: str = "",
    address_line2: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    delivery_instructions: str = "",
    requires_pin: bool = False,
    allows_partial: bool = True,
    actor_label: str = "marketplace",
    api_client: ApiClient | None = None,
    api_body_sha256: str = "",
    number_feed_event: bool = False,
) -> Order:
    """Creates a received order and reserves its stock in the same transaction.
    An order from a marketplace client (`api_client`) also gets its feed event and webhook rows.
    `number_feed_event` (the API's create, which answers with the event's seq): on PostgreSQL
    the feed's numbering (orders.outbox.sequence_events_for_answer) runs in the same round trip
    and transaction, and `order.feed_seq` is the order's last seq (None when not numbered here).

    Side effects: Stock.reserved grows by each line's quantity; one `order.received` event; an
    EligibilityRequest row per listing (the recompute's outbox, retailers.eligibility_hooks).
    Raises ActionRefused(code="out_of_stock") and writes nothing when a line cannot be reserved;
    IntegrityError when the marketplace order id is taken.
    """
    lines = list(lines)
    if not lines:
        raise ActionRefused("An order needs at least one line.", code="validation")
    now = timezone.now()
    order = Order(
        marketplace_order_id=marketplace_order_id,
        store=store,
        placed_at=placed_at,
        deliver_by=deliver_by,
        prep_due_at=placed_at + dt.timedelta(minutes=store.prep_sla_minutes),
        customer_name=customer_name,
        customer_phone=customer_phone,
        address_line1=address_line1,
        address_line2=address_line2,
        city=city,
        state=state,
        postal_code=postal_code,
        latitude=latitude,
        longitude=longitude,
        delivery_instructions=delivery_instructions,
        requires_pin=requires_pin,
        allows_partial=allows_partial,
        api_client=api_client,
        api_body_sha256=api_body_sha256,
        created_at=now,
        status_changed_at=now,
        updated_at=now,
    )
    order.feed_seq = None
    if connection.vendor == "postgresql":
        number = number_feed_event and api_client is not None
        if connection.in_atomic_block:
            # Inside a caller's transaction a savepoint keeps a refused intake from aborting it.
            with transaction.atomic():
                _receive_in_one_statement(order=order, lines=lines, actor_label=actor_label, at=now, number=number)
        else:
            # On its own the message is its own transaction: no BEGIN and COMMIT round trips.
            _receive_in_one_statement(order=order, lines=lines, actor_label=actor_label, at=now, number=number)
    else:
        with transaction.atomic():
            _receive_with_orm(order=order, lines=lines, actor_label=actor_label, at=now)
            # The reservation (and a slot of the store's hourly capacity) can end same-day
            # eligibility: the recompute request is written with the order (on PostgreSQL by
            # the statement's new_requests).
            eligibility_after_order_change(store_id=store.pk, listing_ids=[line.listing.pk for line in lines])
    return order


def _receive_with_orm(*, order: Order, lines: list[NewLine], actor_label: str, at: dt.datetime) -> None:
    """order_receive's writes, one statement each (SQLite), inside the caller's transaction."""
    order.save(force_insert=True)
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            listing=line.listing,
            quantity=line.quantity,
            reserved_quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
        )
        for line in lines
    )
    _record_event(
        order=order,
        type="order.received",
        from_status="",
        to_status=S.RECEIVED,
        acting_user=None,
        actor_label=actor_label,
        at=at,
    )
    # Reserve only what is there: two orders racing for the last unit cannot both win. Last of
    # the writes, so the stock rows stay locked only until the commit.
    for line in lines:
        reserved = Stock.objects.filter(
            store=order.store, listing=line.listing, on_hand__gte=F("reserved") + line.quantity
        ).update(reserved=F("reserved") + line.quantity)
        if reserved != 1:
            raise ActionRefused(
                f"{line.listing.seller_sku} is out of stock at {order.store.name}.", code="out_of_stock"
            )


# --- The same writes on PostgreSQL in one statement (one round trip, atomic by itself).
#
# Each row goes as one JSON document that jsonb_populate_record(set) turns into a row of its
# table (keys are column names, values parsed by the column's type), built from an instance of
# the model so every default applies: a handful of parameters however many lines, one statement
# text for every order, prepared once per database session.


def _columns(model: type[models.Model], values: Mapping[str, str] = {}) -> tuple[str, str]:  # noqa: B006 - read only
    """(column list, select list from `r`) of `model`'s INSERT; `values` gives an SQL
    expression instead of r's value for some columns."""
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    selected = ", ".join(values.get(field.column, f"r.{quote(field.column)}") for field in fields)
    return columns, selected


def _receive_sql() -> str:
    """$1 store id, $2 the order, $3 its lines (an array), $4 its event, $5 its feed event or
    null, $6 a webhook delivery (the endpoint, event and order filled in here), $7 the marketplace
    client id or null."""
    order_columns, order_values = _columns(
        Order, {"status": "CASE WHEN (SELECT count(*) FROM reserved) = jsonb_array_length($3) THEN r.status END"}
    )
    new_id = {"order_id": "(SELECT id FROM new_order)"}
    line_columns, line_values = _columns(OrderLine, new_id)
    event_columns, event_values = _columns(OrderEvent, new_id)
    feed_columns, feed_values = _columns(FeedEvent, new_id)
    delivery_columns, delivery_values = _columns(WebhookDelivery, {**new_id, "event_id": "f.id", "endpoint_id": "e.id"})
    return f"""WITH locked AS (
    SELECT id FROM retailers_stock
     WHERE store_id = $1 AND listing_id IN (
           SELECT (line->>'listing_id')::bigint FROM jsonb_array_elements($3) AS line)
     ORDER BY id FOR UPDATE
), reserved AS (
    UPDATE retailers_stock AS s SET reserved = s.reserved + v.quantity
      FROM locked, jsonb_to_recordset($3) AS v (listing_id bigint, quantity integer)
     WHERE s.id = locked.id AND s.listing_id = v.listing_id RETURNING s.id
), new_order AS (
    INSERT INTO orders_order ({order_columns})
    SELECT {order_values} FROM jsonb_populate_record(NULL::orders_order, $2) AS r RETURNING id
), new_lines AS (
    INSERT INTO orders_orderline ({line_columns})
    SELECT {line_values} FROM jsonb_populate_recordset(NULL::orders_orderline, $3) AS r
), new_event AS (
    INSERT INTO orders_orderevent ({event_columns})
    SELECT {event_values} FROM jsonb_populate_record(NULL::orders_orderevent, $4) AS r
), new_feed_event AS (
    INSERT INTO orders_feedevent ({feed_columns})
    SELECT {feed_values} FROM jsonb_populate_record(NULL::orders_feedevent, $5) AS r
     WHERE $5 IS NOT NULL RETURNING id
), new_deliveries AS (
    INSERT INTO orders_webhookdelivery ({delivery_columns})
    SELECT {delivery_values} FROM new_feed_event AS f
      JOIN orders_webhookendpoint AS e ON e.client_id = $7 AND e.is_active
     CROSS JOIN jsonb_populate_record(NULL::orders_webhookdelivery, $6) AS r
), new_requests AS (
    INSERT INTO retailers_eligibilityrequest AS q (kind, object_id, created_at)
    SELECT DISTINCT {EligibilityRequestKind.LISTING.value}, (line->>'listing_id')::bigint,
           ($2->>'created_at')::timestamptz
      FROM jsonb_array_elements($3) AS line ORDER BY 2
        ON CONFLICT (kind, object_id) DO UPDATE SET created_at = EXCLUDED.created_at
)
SELECT id FROM new_order"""  # noqa: S608 - model columns and $n parameters


_STOCK_CONSTRAINT = "stock_reserved_within_on_hand"


@functools.cache
def _receive_statement() -> Prepared:
    return Prepared("mallrun_receive", "bigint, jsonb, jsonb, jsonb, jsonb, jsonb, bigint", _receive_sql())


# The order's id and last seq, after the numbering.
_ORDER_SEQ = Prepared(
    "mallrun_order_seq",
    "text",
    "SELECT o.id, MAX(f.seq) FROM orders_order o LEFT JOIN orders_feedevent f ON f.order_id = o.id"
    " WHERE o.marketplace_order_id = $1 GROUP BY o.id",
)


def _receive_in_one_statement(
    *, order: Order, lines: list[NewLine], actor_label: str, at: dt.datetime, number: bool = False
) -> None:
    """order_receive's writes as the data-modifying CTEs of one statement: the stock
    reservations (rows locked in id order, so two intakes never wait for each other in a
    circle), the order, its lines, the `order.received` event and, for a marketplace order, its
    feed event with one webhook delivery per active endpoint (what _record_event and
    orders.outbox.record_feed_event write), and the eligibility recompute request of each
    listing (what retailers.eligibility_hooks writes: sorted, and a conflict updates the row so
    it stays locked to the commit, see there). Reserving beyond what is on hand breaks the stock
    table's reserved ≤ on_hand check; a stock row that is gone leaves the order's status NULL
    (the count of reserved rows falls short), which breaks NOT NULL: either way the statement
    is undone as a whole and ActionRefused(out_of_stock) is raised. Sets the order's pk.

    `number`: the feed's numbering follows in the same message, so in the same (implicit)
    transaction: the sequencer's advisory lock is taken after the writes and held to the commit,
    as sequence_events_for_answer holds it, so seq values still become visible in increasing
    order; the order's new event is numbered with the committed ones. One commit (one WAL
    flush) instead of two. Sets order.feed_seq."""
    # The order's id comes from the statement (new_order): the rows' order_id is left empty.
    new_lines = [
        new_row_document(
            OrderLine,
            listing_id=line.listing.pk,
            quantity=line.quantity,
            reserved_quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
        )
        for line in lines
    ]
    event_type = "order.received"
    event = new_row_document(
        OrderEvent, type=event_type, from_status="", to_status=S.RECEIVED, actor_label=actor_label, at=at
    )
    feed_event = delivery = None
    if order.api_client_id is not None and event_type in FEED_TYPES:
        feed_event = new_row_document(
            FeedEvent, event_id=new_event_id(at), client_id=order.api_client_id, type=event_type, occurred_at=at
        )
        delivery = new_row_document(WebhookDelivery, status=DeliveryStatus.PENDING, due_at=at)
    params = [
        order.store_id,
        json.dumps(row_document(order)),
        json.dumps(new_lines),
        json.dumps(event),
        None if feed_event is None else json.dumps(feed_event),
        None if delivery is None else json.dumps(delivery),
        order.api_client_id,
    ]
    receive = _receive_statement()
    message = receive.execute(len(params))
    if number:
        message += f"; SELECT pg_advisory_xact_lock({_SEQUENCE_LOCK}); {SEQUENCE.execute()}; {_ORDER_SEQ.execute(1)}"
        params.append(order.marketplace_order_id)
    try:
        with connection.cursor() as cursor:
            prepare(cursor, receive, SEQUENCE, _ORDER_SEQ)
            cursor.execute(message, params)
            order.pk = cursor.fetchone()[0]
            if number:
                cursor.nextset()
                cursor.nextset()
                cursor.nextset()
                order_id, order.feed_seq = cursor.fetchone()
                assert order_id == order.pk  # noqa: S101 - the same order, read back
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)
        short = diag is not None and (
            diag.constraint_name == _STOCK_CONSTRAINT
            or (diag.table_name == Order._meta.db_table and diag.column_name == "status")
        )
        if not short:
            raise
        skus = ", ".join(line.listing.seller_sku for line in lines)
        raise ActionRefused(f"{skus}: not enough in stock at {order.store.name}.", code="out_of_stock") from None
    order._state.adding = False
    order._state.db = connection.alias


@transaction.atomic
def order_accept(*, order: Order, acting_user: AbstractBaseUser | None) -> Order:
    """received → accepted. Side effects: one `order.accepted` event."""
    _transition(order=order, to=S.ACCEPTED, acting_user=acting_user)
    return order


@transaction.atomic
def order_start_picking(*, order: Order, acting_user: AbstractBaseUser | None) -> Order:
    """accepted → picking. Side effects: one `order.picking` event."""
    _transition(order=order, to=S.PICKING, acting_user=acting_user)
    return order


@transaction.atomic
def order_record_picked(*, order: Order, acting_user: AbstractBaseUser | None, picked: Mapping[int, int]) -> Order:
    """Records how many units of each line (by line id) are in hand while picking.

    Side effects: OrderLine.picked; one `order.picked_recorded` event listing the changes.
    """
    now = timezone.now()
    # Locks the order row while picking state is written, and refuses once it left picking.
    if Order.objects.filter(pk=order.pk, status=S.PICKING).update(updated_at=now) != 1:
        # Say what it is now (cancelled by the marketplace meanwhile, not accepted yet, …).
        current = Order.objects.filter(pk=order.pk).values_list("status", flat=True).first()
        if current in {S.CANCELLED, S.REJECTED}:
            message = f"Order {order.number} {_standing(order.pk, current)}: nothing more is done for it."
        else:
            message = (
                f"Order {order.number} {_standing(order.pk, current)}: picked quantities are recorded only while it "
                "is being picked."
            )
        raise ActionRefused(message, code="illegal-transition")
    lines = {line.pk: line for line in order.lines.select_related("listing")}
    changes = {}
    for line_id, quantity in picked.items():
        line = lines.get(line_id)
        if line is None:
            raise ActionRefused(f"Line {line_id} is not part of order {order.number}.", code="validation")
        if not 0 <= quantity <= line.quantity:
            raise ActionRefused(
                f"{line.listing.seller_sku}: picked must be between 0 and {line.quantity}.", code="validation"
            )
        if quantity != line.picked:
            changes[line.listing.seller_sku] = {"from": line.picked, "to": quantity}
            OrderLine.objects.filter(pk=line.pk).update(picked=quantity)
            line.picked = quantity
    if changes:
        _record_event(
            order=order,
            type="order.picked_recorded",
            from_status=S.PICKING,
            to_status=S.PICKING,
            acting_user=acting_user,
            actor_label=None,
            at=now,
            data={"lines": changes},
        )
    order.updated_at = now
    return order


def _create_packages(*, order: Order, package_count: int, at: dt.datetime) -> list[Package]:
    packages = []
    for sequence in range(1, package_count + 1):
        for _attempt in range(5):
            try:
                # A savepoint per try: a clashing random code must not abort the whole change.
                with transaction.atomic():
                    packages.append(
                        Package.objects.create(
                            order=order, label_code=new_label_code(), sequence=sequence, created_at=at
                        )
                    )
                break
            except IntegrityError:
                if Package.objects.filter(order=order, sequence=sequence).exists():
                    raise
        else:  # pragma: no cover - 29^6 codes make five clashes in a row practically impossible
            raise ActionRefused("Could not create a unique label code; please try again.", code="conflict")
    return packages


@transaction.atomic
def order_mark_ready(
    *,
    order: Order,
    acting_user: AbstractBaseUser | None,
    package_count: int,
    picked: Mapping[int, int] | None = None,
) -> Order:
    """picking → ready (everything picked) or short → ready (send the rest). `picked`: the picked
    quantities sent with it, recorded first (order_record_picked), in the same transaction.

    Side effects: creates `package_count` packages with unique label codes; one `order.ready`
    event; what order_record_picked writes for `picked`.
    """
    if not 1 <= package_count <= MAX_PACKAGES:
        raise ActionRefused(f"Package count must be between 1 and {MAX_PACKAGES}.", code="validation")
    if picked is not None:
        order_record_picked(order=order, acting_user=acting_user, picked=picked)
    _lock_order(order)
    lines = list(order.lines.select_related("listing"))
    if order.status == S.PICKING:
        unpicked = [line for line in lines if line.picked < line.quantity]
        if unpicked:
            line = unpicked[0]
            raise ActionRefused(
                f"{line.listing.title} ({line.listing.seller_sku}) has {line.picked} of {line.quantity} picked: "
                "record the picked "
                "quantities, or report the missing item as a problem.",
                code="validation",
            )
    elif order.status == S.SHORT:
        if not order.allows_partial:
            raise ActionRefused(
                f"The marketplace does not allow partial delivery for order {order.number}: reject it instead.",
                code="partial-not-allowed",
            )
        if not any(line.picked for line in lines):
            raise ActionRefused("Nothing was picked, so there is nothing to send: reject the order.", code="validation")
    event = _transition(order=order, to=S.READY, acting_user=acting_user)
    packages = _create_packages(order=order, package_count=package_count, at=order.updated_at)
    event.data = {"package_count": package_count, "labels": [package.label_code for package in packages]}
    event.save(update_fields=["data"])
    return order


@transaction.atomic
def order_report_short(
    *, order: Order, acting_user: AbstractBaseUser | None, reason: str, picked: Mapping[int, int] | None = None
) -> Order:
    """picking → short: an item is missing. The units that were not picked leave the reserved
    and on-hand stock (they are not on the shelf). `picked`: the picked quantities sent with the
    report, recorded first (order_record_picked), in the same transaction: the stock written off
    is what the person saw missing, not what was last saved.

    Side effects: Stock on_hand/reserved for the missing units; one `order.short` event; what
    order_record_picked writes for `picked`.
    """
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say what is missing or why.", code="validation")
    if picked is not None:
        order_record_picked(order=order, acting_user=acting_user, picked=picked)
    _lock_order(order)
    lines = list(order.lines.select_related("listing"))
    missing = {line.listing.seller_sku: line.missing for line in lines if line.missing}
    if order.status == S.PICKING and not missing:
        raise ActionRefused(
            "Every item is picked: record the picked quantity of the missing item first.", code="validation"
        )
    _transition(
        order=order,
        to=S.SHORT,
        acting_user=acting_user,
        reason=reason,
        data={"missing": missing},
        problem_reason=reason,
    )
    _release_reservations(order=order, keep_picked=True)
    return order


@transaction.atomic
def order_reject(*, order: Order, acting_user: AbstractBaseUser | None, reason: str) -> Order:
    """→ rejected: the store cannot fulfil the order. Releases all reserved stock.

    Side effects: Stock.reserved; one `order.rejected` event (the marketplace is told through
    the event feed).
    """
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Give a reason for rejecting the order.", code="validation")
    _transition(order=order, to=S.REJECTED, acting_user=acting_user, reason=reason, problem_reason=reason)
    _release_reservations(order=order, keep_picked=False)
    return order


@transaction.atomic
def order_cancel(
    *, order: Order, acting_user: AbstractBaseUser | None, reason: str, actor_label: str | None = None
) -> Order:
    """→ cancelled, by the marketplace or an operator, until pickup. Releases reserved stock.

    Side effects: Stock.reserved; one `order.cancelled` event.
    """
    _transition(order=order, to=S.CANCELLED, acting_user=acting_user, actor_label=actor_label, reason=reason.strip())
    _release_reservations(order=order, keep_picked=False)
    return order
