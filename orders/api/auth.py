"""Request signing of the contract: Mallrun-Key, Mallrun-Timestamp and Mallrun-Signature over
`{timestamp}.{METHOD}.{path?query}.{raw body}`, then the per-key rate limit."""

import functools
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpRequest
from ninja.security import APIKeyHeader

from orders.api.problems import Problem, invalid_signature, validation_error
from orders.api.ratelimit import retry_after_if_limited
from orders.api.representation import REPLAY_SQL
from orders.api.secrets import decrypt_secret, request_message, signature_matches
from orders.models import ApiClient
from portal.prepared import Prepared, numbered, prepare

MAX_CLOCK_SKEW_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024


@functools.lru_cache(maxsize=4096)
def _plain_secret(secret_key: str, encrypted_secret: str) -> str | None:
    # A ciphertext never changes (rotation adds rows, revocation flips flags that the query
    # still checks on every request), so its decryption can be kept for the process's life.
    return decrypt_secret(encrypted_secret)


_CLIENT_FIELDS = ["id", "name", "key_id", "revoked", "created_at"]
# Every request runs this: plain SQL spares it the ORM's query building.
_ACTIVE_SECRETS_SQL = """
SELECT c.id, c.name, c.key_id, c.revoked, c.created_at, s.encrypted_secret
  FROM orders_apisecret s JOIN orders_apiclient c ON c.id = s.client_id
 WHERE c.key_id = %s AND c.revoked = %s AND s.revoked = %s
"""


# The same, with the order a create may be replaying alongside (PostgreSQL): one round trip.
_ACTIVE_SECRETS_AND_REPLAY_SQL = f"""
SELECT c.id, c.name, c.key_id, c.revoked, c.created_at, s.encrypted_secret, r.*
  FROM orders_apisecret s JOIN orders_apiclient c ON c.id = s.client_id
  LEFT JOIN LATERAL ({REPLAY_SQL}) r ON true
 WHERE c.key_id = %s AND c.revoked = %s AND s.revoked = %s
"""  # noqa: S608 - REPLAY_SQL is a constant


def _active_secrets(key_id: str, replay_of: str | None) -> list[tuple]:
    """The client's columns then the encrypted secret, one row per active secret (then the
    columns of REPLAY_SQL for `replay_of`)."""
    with connection.cursor() as cursor:
        if replay_of is None:
            cursor.execute(_ACTIVE_SECRETS_SQL, [key_id, False, False])
        else:
            prepare(cursor, _SECRETS_AND_REPLAY)
            cursor.execute(_SECRETS_AND_REPLAY.execute(4), [replay_of, key_id, False, False])
        return cursor.fetchall()


# Planning it costs more than running it: prepared once per database session (portal.prepared).
_SECRETS_AND_REPLAY = Prepared(
    "mallrun_secrets_and_replay", "text, text, boolean, boolean", numbered(_ACTIVE_SECRETS_AND_REPLAY_SQL)
)


def _too_big() -> Problem:
    return validation_error([{"field": "body", "message": f"The body is larger than {MAX_BODY_BYTES} bytes."}])


def authenticate_request(request: HttpRequest, key_id: str | None) -> ApiClient:
    """The client whose active secret signed this request; a 401 problem otherwise that does not
    say what was wrong (unknown key, revoked key, stale timestamp or bad signature)."""
    return _authenticate(request, key_id, replay_of=None)[0]


def authenticate_replay(request: HttpRequest, key_id: str | None, marketplace_order_id: str) -> tuple[ApiClient, tuple]:
    """authenticate_request, and the REPLAY_SQL row of the order id (PostgreSQL only), read in
    the same statement; nothing of it is used unless the signature holds."""
    return _authenticate(request, key_id, replay_of=marketplace_order_id)


def _authenticate(request: HttpRequest, key_id: str | None, *, replay_of: str | None) -> tuple[ApiClient, tuple]:
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_big() from None
    timestamp = request.headers.get("Mallrun-Timestamp", "")
    signature = request.headers.get("Mallrun-Signature", "")
    if not key_id or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        raise invalid_signature()
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise invalid_signature()
    rows = _active_secrets(key_id, replay_of)
    if not rows:
        raise invalid_signature()
    message = request_message(
        timestamp=timestamp, method=request.method or "", path_with_query=request.get_full_path(), body=body
    )
    plain = [secret for row in rows if (secret := _plain_secret(settings.SECRET_KEY, row[5])) is not None]
    if not signature_matches(secrets_=plain, message=message, header=signature):
        raise invalid_signature()
    retry_after = retry_after_if_limited(key_id)
    if retry_after is not None:
        problem = Problem("rate-limited", 429, f"More than 50 requests a second: retry in {retry_after} s.")
        problem.headers["Retry-After"] = str(retry_after)
        raise problem
    if len(body) > MAX_BODY_BYTES:
        raise _too_big()
    return ApiClient.from_db(connection.alias, _CLIENT_FIELDS, rows[0][:5]), rows[0][6:]


class SignedRequest(APIKeyHeader):
    """Shown in the OpenAPI document as the Mallrun-Key header; the signature headers travel
    with it."""

    param_name = "Mallrun-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiClient:
        # The replay fast path (orders.api.views) may have checked this request already: a
        # second check would count it twice against the rate limit.
        already = getattr(request, "api_client", None)
        if already is not None:
            return already
        return authenticate_request(request, key)
