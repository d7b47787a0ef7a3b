"""Writes of the marketplace API: clients and their secrets, order intake and cancel."""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.api.auth import MAX_CLOCK_SKEW_SECONDS
from orders.api.placement import candidate_stores, covering_malls, covers, markets_with_drivers, zip_centroid
from orders.api.problems import Problem, validation_error
from orders.api.reads import IntakeReads, intake_reads
from orders.api.representation import orders_for_representation
from orders.api.schemas import OrderIn
from orders.api.secrets import encrypt_secret, new_key_id, new_secret, new_webhook_secret
from orders.lifecycle import OrderStatus
from orders.models import ApiClient, ApiSecret, Order, WebhookEndpoint
from orders.services import NewLine, order_cancel, order_receive
from portal.errors import ActionRefused
from retailers.models import Listing, Mall

S = OrderStatus


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    secret: str
    webhook_secret: str | None = None


@transaction.atomic
def api_client_create(*, name: str, webhook_url: str | None = None) -> IssuedClient:
    """Creates a marketplace client with one secret (and a webhook endpoint when a URL is given).
    The secrets are returned once, here; only their encrypted form is stored."""
    client = ApiClient.objects.create(name=name, key_id=new_key_id())
    secret = new_secret()
    ApiSecret.objects.create(client=client, encrypted_secret=encrypt_secret(secret))
    webhook_secret = None
    if webhook_url:
        webhook_secret = new_webhook_secret()
        WebhookEndpoint.objects.create(client=client, url=webhook_url, encrypted_secret=encrypt_secret(webhook_secret))
    return IssuedClient(client=client, secret=secret, webhook_secret=webhook_secret)


@transaction.atomic
def api_secret_rotate(*, client: ApiClient) -> str:
    """Adds a new secret; the old ones stay valid until revoked, so the client can switch over."""
    secret = new_secret()
    ApiSecret.objects.create(client=client, encrypted_secret=encrypt_secret(secret))
    return secret


@transaction.atomic
def api_secret_revoke_old(*, client: ApiClient) -> int:
    """Revokes every secret but the newest: the end of a rotation."""
    newest = client.secrets.filter(revoked=False).order_by("-created_at", "-pk").first()
    if newest is None:
        return 0
    return client.secrets.filter(revoked=False).exclude(pk=newest.pk).update(revoked=True)


@transaction.atomic
def api_client_revoke(*, client: ApiClient) -> None:
    ApiClient.objects.filter(pk=client.pk).update(revoked=True)
    client.revoked = True


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint) -> str:
    secret = new_webhook_secret()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(encrypted_secret=encrypt_secret(secret))
    return secret


def canonical_sha256(document: object) -> str:
    """Equal JSON values give equal hashes, whatever their whitespace and key order."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a body with an unpaired surrogate ("\ud800") is hashed, not a 500, and then
    # refused by validation; every other body hashes to the same bytes as before.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _existing(*, client: ApiClient, marketplace_order_id: str, body_sha256: str) -> Order | None:
    """The order already sent with this id and an equal body, ready to be represented."""
    existing = orders_for_representation(Order.objects.filter(marketplace_order_id=marketplace_order_id)).first()
    if existing is None:
        return None
    if existing.api_client_id != client.pk or existing.api_body_sha256 != body_sha256:
        raise Problem(
            "idempotency-conflict",
            409,
            f"Order {marketplace_order_id} was already sent with a different body.",
        )
    return existing


def _validate(payload: OrderIn, now: dt.datetime, reads: IntakeReads):
    """Checks what the schema cannot: known seller, SKUs and mall, a deadline ahead, an address
    inside a delivery radius. Returns (seller, listings by line, malls to try, lat, lon)."""
    errors: list[dict[str, str]] = []
    listings = reads.listings
    seller = reads.seller
    if seller is None:
        errors.append({"field": "seller_id", "message": f"Unknown seller {payload.seller_id}."})
    lines: list[tuple[Listing, int]] = []
    if seller is not None:
        seen: set[str] = set()
        for index, line in enumerate(payload.lines):
            listing = listings.get(line.sku)
            if listing is None:
                errors.append({"field": f"lines[{index}].sku", "message": f"Unknown SKU {line.sku} for this seller."})
            elif line.sku in seen:
                errors.append({"field": f"lines[{index}].sku", "message": f"SKU {line.sku} is already on a line."})
            else:
                lines.append((listing, line.quantity))
            seen.add(line.sku)
    # An order is placed before it is sent, give or take the clock skew its signature may have
    # (a placed_at near year 9999 also made the preparation deadline overflow).
    if payload.placed_at > now + dt.timedelta(seconds=MAX_CLOCK_SKEW_SECONDS):
        errors.append({"field": "placed_at", "message": "The order cannot be placed in the future."})
    if payload.deliver_by <= now:
        errors.append({"field": "deliver_by", "message": "The delivery deadline is in the past."})
    elif payload.deliver_by <= payload.placed_at:
        errors.append({"field": "deliver_by", "message": "The delivery deadline must be after placed_at."})
    mall = None
    if payload.mall is not None:
        mall = reads.malls[0] if reads.malls else None
        if mall is None:
            errors.append({"field": "mall", "message": f"Unknown mall {payload.mall}."})
    address = payload.address
    if (address.lat is None) != (address.lon is None):
        field = "address.lon" if address.lon is None else "address.lat"
        errors.append({"field": field, "message": "Give both lat and lon, or neither."})
        point = None
    elif address.lat is not None:
        point = (float(address.lat), float(address.lon))
    else:
        point = zip_centroid(address.postal_code)
        if point is None:
            errors.append({"field": "address.postal_code", "message": "Unknown ZIP code: send lat and lon."})
    malls: list[Mall] = []
    if point is not None and (mall is not None or payload.mall is None):
        covering = [mall] if mall is not None else covering_malls(*point, malls=reads.malls)
        malls = [candidate for candidate in covering if covers(candidate, *point)]
        if not malls:
            where = f"the delivery radius of {mall.slug}" if mall else "every mall's delivery radius"
            errors.append({"field": "address", "message": f"The address is outside {where}."})
    if errors:
        raise validation_error(errors)
    return seller, lines, malls, point


@dataclass(frozen=True)
class Intake:
    order: Order
    created: bool
    # (listing, quantity) of a created order; empty for a repeated one.
    lines: list = field(default_factory=list)


def api_order_create(*, client: ApiClient, payload: OrderIn, body_sha256: str, id_unused: bool = False) -> Intake:
    """Places a marketplace order (see orders.api.placement) and reserves its stock, all in one
    transaction per store tried. Returns an Intake. An order id sent again with an equal
    body returns the existing order, also when the two requests race (the unique order id
    decides the winner); with another body it is an `idempotency-conflict`.

    Side effects: those of order_receive (stock reserved, `order.received` event), the order's
    marketplace client and body hash, a feed event and webhook outbox rows. `id_unused` says the
    caller has just found no order with this id, so it is not looked up again.
    """
    if not id_unused:
        existing = _existing(client=client, marketplace_order_id=payload.marketplace_order_id, body_sha256=body_sha256)
        if existing is not None:
            return Intake(existing, created=False)
    now = timezone.now()
    reads = intake_reads(seller_id=payload.seller_id, skus=[line.sku for line in payload.lines], mall_slug=payload.mall)
    seller, lines, malls, (lat, lon) = _validate(payload, now, reads)
    candidates = candidate_stores(
        seller=seller,
        malls=malls,
        lines=lines,
        now=now,
        reads=reads,
        # A mall whose market has no driver online cannot deliver same-day (PRODUCT.md's rule).
        driver_markets=markets_with_drivers(now=now, reads=reads),
    )
    for store in candidates.stores:
        try:
            # order_receive is one transaction: the order, its stock, events and outbox rows.
            order = order_receive(
                store=store,
                marketplace_order_id=payload.marketplace_order_id,
                placed_at=payload.placed_at,
                deliver_by=payload.deliver_by,
                customer_name=payload.customer.name,
                customer_phone=payload.customer.phone or "",
                lines=[
                    NewLine(listing=listing, quantity=quantity, unit_price_cents=line.unit_price_cents)
                    for (listing, quantity), line in zip(lines, payload.lines, strict=True)
                ],
                address_line1=payload.address.line1,
                address_line2=payload.address.line2,
                city=payload.address.city,
                state=payload.address.state,
                postal_code=payload.address.postal_code,
                latitude=round(lat, 6),
                longitude=round(lon, 6),
                delivery_instructions=payload.address.instructions,
                requires_pin=payload.requires_pin,
                actor_label=f"marketplace ({client.name})",
                api_client=client,
                api_body_sha256=body_sha256,
                number_feed_event=True,
            )
            return Intake(order, created=True, lines=lines)
        except ActionRefused as refused:
            if refused.code != "out_of_stock":
                raise
            candidates.reasons.add("out_of_stock")  # taken by a concurrent order since we looked
        except IntegrityError:
            # A concurrent request with the same order id committed first.
            existing = _existing(
                client=client, marketplace_order_id=payload.marketplace_order_id, body_sha256=body_sha256
            )
            if existing is None:
                raise
            return Intake(existing, created=False)
    # A concurrent twin may have taken the stock and committed the order since we looked.
    existing = _existing(client=client, marketplace_order_id=payload.marketplace_order_id, body_sha256=body_sha256)
    if existing is not None:
        return Intake(existing, created=False)
    raise Problem(
        "not-eligible",
        422,
        "No store can fulfil this order same-day.",
        reasons=sorted(candidates.reasons or {"out_of_stock"}),
    )


def api_order_cancel(*, client: ApiClient, order: Order, reason: str) -> Order:
    """Cancels until pickup; cancelling a cancelled order changes nothing. Side effects: those of
    order_cancel (stock released, `order.cancelled` event, feed event and webhook rows)."""
    # Moved on by someone else since it was read (the store accepting it, a concurrent cancel):
    # try again from its new status, which still decides. The lifecycle has no cycles, so this ends.
    while order.status != S.CANCELLED:
        try:
            return order_cancel(
                order=order,
                acting_user=None,
                reason=reason or "marketplace",
                actor_label=f"marketplace ({client.name})",
            )
        except ActionRefused as refused:
            order.refresh_from_db(fields=["status"])
            if refused.code != "conflict":
                raise Problem(
                    "conflict",
                    409,
                    f"Order {order.marketplace_order_id} is {order.status}: it can no longer be cancelled.",
                ) from refused
    return order
