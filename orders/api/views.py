"""The marketplace API, version 1 (/work/shared/marketplace-api.md), on django-ninja: typed
pydantic schemas that also produce the OpenAPI 3.1 document served at /api/v1/openapi.json."""

import functools
import json
import logging
import re
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import Body, NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from orders.api.auth import MAX_BODY_BYTES, SignedRequest, authenticate_replay, authenticate_request
from orders.api.problems import (
    CHALLENGE,
    PROBLEM_CONTENT_TYPE,
    Problem,
    invalid_signature,
    not_found,
    validation_error,
)
from orders.api.representation import (
    new_order_representation,
    order_representation,
    orders_for_representation,
    replay_from_row,
    replay_representation,
    represent,
)
from orders.api.schemas import (
    ORDER_ID,
    CancelIn,
    EligibilityPage,
    EventPage,
    NotEligibleProblemOut,
    OrderIn,
    OrderOut,
    ProblemOut,
    Timestamp,
    ValidationProblemOut,
)
from orders.api.services import api_order_cancel, api_order_create, canonical_sha256
from orders.models import FeedEvent, Order
from orders.outbox import event_payload, sequence_events, sequence_events_for_answer
from retailers.models import Mall
from retailers.selectors import eligibility_feed_page

logger = logging.getLogger(__name__)


def _json_number(text: str) -> float | int:
    # JSON has one number type, and JSON Schema (the OpenAPI document's language) counts 2.0 and
    # 1e2 as the integers 2 and 100: read them so, for the schema and the idempotency hash alike.
    value = float(text)
    return int(value) if value.is_integer() else value


def _parse_json(body: bytes) -> Any:
    return json.loads(body, parse_float=_json_number)


class KeepingParser(Parser):
    """Keeps the parsed body on the request: the idempotency hash is taken from it. A create's
    body was already parsed by _replay_first, which left it there."""

    def parse_body(self, request: HttpRequest) -> Any:
        if getattr(request, "api_document", None) is None:
            request.api_document = _parse_json(request.body)
        return request.api_document


RETRY_AFTER_HEADER = {
    "description": "Whole seconds until the key's token bucket holds a token again (at least 1).",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


WWW_AUTHENTICATE_HEADER = {
    "description": "The challenge of the signing scheme (RFC 9110): " + CHALLENGE,
    "required": True,
    "schema": {"type": "string", "const": CHALLENGE},
}


class MarketplaceAPI(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> dict:
        schema = super().get_openapi_schema(*args, **kwargs)
        # Errors are RFC 9457 problem documents: say so in the document.
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(code) >= 400 and "application/json" in content:
                        response["content"] = {PROBLEM_CONTENT_TYPE: content["application/json"]}
                    if int(code) == 429:
                        response["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
                    if int(code) == 401:
                        response["headers"] = {"WWW-Authenticate": WWW_AUTHENTICATE_HEADER}
        # The order a create answers is the one the read and cancel operations take.
        order_links = {
            name: {
                "operationId": operation_id,
                "parameters": {"marketplace_order_id": "$response.body#/marketplace_order_id"},
            }
            for name, operation_id in (("GetOrder", "getOrder"), ("CancelOrder", "cancelOrder"))
        }
        for operations in schema.get("paths", {}).values():
            if operations.get("post", {}).get("operationId") == "createOrder":
                for code, response in operations["post"]["responses"].items():
                    if str(code) in {"200", "201"}:
                        response["links"] = order_links
        schema["components"].setdefault("securitySchemes", {})["SignedRequest"]["description"] = (
            "The key id in Mallrun-Key, plus Mallrun-Timestamp (unix seconds) and Mallrun-Signature: "
            "`v1,` + base64 HMAC-SHA256(secret, `{timestamp}.{METHOD}.{path?query}.{raw body}`); several "
            "space-separated signatures are allowed during a secret rotation."
        )
        return schema


api = MarketplaceAPI(
    title="Mallrun marketplace API",
    version="1",
    description="Same-day orders from mall stores. Contract: marketplace-api.md, version 1.",
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url=None,
    auth=SignedRequest(),
    parser=KeepingParser(),
)

UNAUTHORIZED = {401: ProblemOut, 429: ProblemOut}


def _field_name(location: tuple) -> str:
    # ("body", "payload", "lines", 0, "quantity") → "lines[0].quantity"
    parts = [part for part in location if part not in {"body", "payload", "query", "path"}]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or "body"


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return exc.response()


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{"field": _field_name(tuple(error.get("loc", ()))), "message": error["msg"]} for error in exc.errors]
    return validation_error(errors).response()


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return invalid_signature().response()


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        return validation_error([{"field": "body", "message": "The body is not valid JSON."}]).response()
    return Problem("error", exc.status_code, str(exc)).response()


@api.exception_handler(Http404)
def _missing(request: HttpRequest, exc: Http404) -> HttpResponse:
    return not_found().response()


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("marketplace API error on %s %s", request.method, request.path)
    return Problem("server-error", 500, "Something went wrong on our side; the request can be retried.").response()


def _numbered(order_id: int) -> dict:
    """The representation after the order's committed events got their seq. An order with no
    feed event at all (only one made outside the API) says 0, the feed's "before everything"."""
    sequence_events_for_answer(order_id)
    document = represent(order_id)
    if document["last_event_seq"] is None:
        document["last_event_seq"] = 0
    return document


def _order_for_client(request: HttpRequest, marketplace_order_id: str) -> Order:
    # Every API order's id matches ORDER_ID; anything else (a NUL, which PostgreSQL text
    # cannot even be compared with) is not one, without asking the database.
    if not re.fullmatch(ORDER_ID, marketplace_order_id):
        raise not_found(f"There is no order {marketplace_order_id}.")
    order = Order.objects.filter(marketplace_order_id=marketplace_order_id, api_client=request.auth).first()
    if order is None:
        raise not_found(f"There is no order {marketplace_order_id}.")
    return order


@api.post(
    "/orders",
    response={201: OrderOut, 200: OrderOut, 409: ProblemOut, 422: ValidationProblemOut | NotEligibleProblemOut}
    | UNAUTHORIZED,
    exclude_unset=True,
    summary="Create a same-day order",
    operation_id="createOrder",
)
def create_order(request: HttpRequest, payload: OrderIn = Body(...)):  # noqa: B008
    body_sha256 = getattr(request, "api_body_sha256", None) or canonical_sha256(request.api_document)
    intake = api_order_create(
        client=request.auth,
        payload=payload,
        body_sha256=body_sha256,
        id_unused=getattr(request, "api_order_id_unused", None) == payload.marketplace_order_id,
    )
    if intake.created:
        # The answer carries the seq of the order.received event it just committed (numbered
        # with the intake's writes on PostgreSQL, see order_receive's number_feed_event).
        seq = intake.order.feed_seq
        if seq is None:
            seq = sequence_events_for_answer(intake.order.pk)
        # Written out as the replay path writes it: the representation already has the schema's
        # shape, so ninja's validation of it would only cost time.
        document = new_order_representation(intake.order, lines=intake.lines, seq=seq)
        return HttpResponse(json.dumps(document), status=201, content_type="application/json; charset=utf-8")
    document = order_representation(intake.order)
    if document["last_event_seq"] is None:  # a concurrent twin created it a moment ago
        document = _numbered(intake.order.pk)
    return Status(200, document)


@api.get(
    "/orders/{marketplace_order_id}",
    response={200: OrderOut, 404: ProblemOut} | UNAUTHORIZED,
    exclude_unset=True,
    summary="Read an order",
    operation_id="getOrder",
)
def get_order(request: HttpRequest, marketplace_order_id: str):
    order_id = _order_for_client(request, marketplace_order_id).pk
    document = represent(order_id)
    if document["last_event_seq"] is None:  # read between its create's commit and the numbering
        document = _numbered(order_id)
    return Status(200, document)


@api.post(
    "/orders/{marketplace_order_id}/cancel",
    response={200: OrderOut, 404: ProblemOut, 409: ProblemOut, 422: ValidationProblemOut} | UNAUTHORIZED,
    exclude_unset=True,
    summary="Cancel an order",
    operation_id="cancelOrder",
)
def cancel_order(request: HttpRequest, marketplace_order_id: str, payload: CancelIn = Body(...)):  # noqa: B008
    order = _order_for_client(request, marketplace_order_id)
    api_order_cancel(client=request.auth, order=order, reason=payload.reason)
    # The answer carries the seq of the order.cancelled event.
    return Status(200, _numbered(order.pk))


@api.get(
    "/events",
    response={200: EventPage, 422: ValidationProblemOut} | UNAUTHORIZED,
    exclude_unset=True,
    summary="Read the event feed",
    operation_id="listEvents",
)
def list_events(
    request: HttpRequest,
    after: int = Query(0, ge=0, description="The last next_after seen; 0 for the start."),  # noqa: B008
    limit: int = Query(100, ge=1, le=500),  # noqa: B008
):
    sequence_events()
    events = list(FeedEvent.objects.filter(client=request.auth, seq__gt=after).order_by("seq")[:limit])
    order_ids = {event.order_id for event in events}
    orders = {order.pk: order for order in orders_for_representation(Order.objects.filter(pk__in=order_ids))}
    documents = {pk: order_representation(order) for pk, order in orders.items()}
    page = {
        "events": [event_payload(event, documents[event.order_id]) for event in events],
        "next_after": events[-1].seq if events else after,
    }
    return Status(200, page)


# A mall's slug (a SlugField): anything else names no mall, and a NUL would fail the lookup.
MALL_SLUG = r"^[-a-zA-Z0-9_]+$"


@api.get(
    "/eligibility",
    response={200: EligibilityPage, 422: ValidationProblemOut} | UNAUTHORIZED,
    summary="Read the same-day eligibility feed of one mall",
    operation_id="listEligibility",
)
def list_eligibility(
    request: HttpRequest,
    mall: str = Query(..., min_length=1, max_length=60, pattern=MALL_SLUG),  # noqa: B008
    changed_since: Timestamp | None = Query(None, description="RFC 3339; items computed at or after it."),  # noqa: B008
    cursor: str | None = Query(None, max_length=200, description="next_cursor of the previous page."),  # noqa: B008
) -> HttpResponse:
    try:
        page = eligibility_feed_page(mall_slug=mall, changed_since=changed_since, cursor=cursor)
    except Mall.DoesNotExist:
        raise validation_error([{"field": "mall", "message": f"Unknown mall {mall}."}]) from None
    except ValueError as error:
        raise validation_error([{"field": "cursor", "message": str(error)}]) from None
    # Up to 1,000 items a page: written straight out, the selector already gives the contract's shape.
    return JsonResponse(
        {"items": page.items, "next_cursor": page.next_cursor}, content_type="application/json; charset=utf-8"
    )


def _problems_for_405(view):
    """ninja answers a wrong method with a plain-text 405: make it a problem document too."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and response.get("Content-Type", "").startswith("text/"):
            problem = Problem("method-not-allowed", 405, f"{request.method} is not allowed here.")
            problem.headers["Allow"] = response["Allow"]
            return problem.response()
        return response

    return wrapped


def _create_document(request: HttpRequest) -> dict | None:
    """The body of a create when it is a JSON object with an order id, else None (the
    operation then answers with the validation errors)."""
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    if len(body) > MAX_BODY_BYTES:
        return None
    try:
        document = _parse_json(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json recurses
        return None
    if not isinstance(document, dict) or not isinstance(document.get("marketplace_order_id"), str):
        return None
    # An id the schema refuses (one with a NUL would fail the replay lookup on PostgreSQL) is
    # answered by the operation's validation.
    if not re.fullmatch(ORDER_ID, document["marketplace_order_id"]):
        return None
    return document


def _replay_first(view):
    """A create sent again with an equal body is answered from one indexed lookup, before the
    body is validated or anything else is read; anything else goes on to the operation."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        try:
            document = _create_document(request)
            key_id = request.headers.get("Mallrun-Key")
            if document is None:
                request.api_client = authenticate_request(request, key_id)
            else:
                order_id, body_sha256 = document["marketplace_order_id"], canonical_sha256(document)
                # Parsed and hashed once: the operation takes both from here.
                request.api_document, request.api_body_sha256 = document, body_sha256
                if connection.vendor == "postgresql":
                    request.api_client, row = authenticate_replay(request, key_id, order_id)
                    found, replay = replay_from_row(row, client_id=request.api_client.pk, body_sha256=body_sha256)
                else:
                    request.api_client = authenticate_request(request, key_id)
                    found, replay = replay_representation(
                        client_id=request.api_client.pk, marketplace_order_id=order_id, body_sha256=body_sha256
                    )
                # The create need not look for the id again (a concurrent twin still loses on
                # the unique index).
                request.api_order_id_unused = None if found else order_id
        except Problem as problem:
            return problem.response()
        except Exception as error:  # noqa: BLE001 - answered as the operation would answer it
            return _unexpected(request, error)
        # Without a seq yet (its create is still numbering), the operation answers and numbers it.
        if document is None or replay is None or replay["last_event_seq"] is None:
            return view(request, *args, **kwargs)
        return HttpResponse(json.dumps(replay), content_type="application/json; charset=utf-8")

    return wrapped


def unknown_path(request: HttpRequest, rest: str) -> HttpResponse:
    return not_found(f"There is nothing at {request.path}.").response()


_patterns, _app_name, _namespace = api.urls
for _pattern in _patterns:
    if str(_pattern.pattern) == "orders":
        _pattern.callback = _replay_first(_pattern.callback)
    _pattern.callback = _problems_for_405(_pattern.callback)

urlpatterns = [path("", (_patterns, _app_name, _namespace)), re_path(r"^(?P<rest>.*)$", csrf_exempt(unknown_path))]
