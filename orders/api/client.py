"""A reference client for the Mallrun marketplace API: the marketplace team may copy it.

It signs every request as the contract says, retries what is safe to retry (network errors,
429 with Retry-After, 5xx) with exponential backoff and jitter, and makes creates idempotent by
sending the same body with the same marketplace_order_id on every try; `webhook_verify` checks a
webhook Mallrun sent, as any Standard Webhooks library does. Only the standard library is used."""

import base64
import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field


def signed_headers(
    *, key_id: str, secret: str, method: str, path_with_query: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three signing headers for one request."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    message = f"{timestamp}.{method.upper()}.{path_with_query}.".encode() + body
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"Mallrun-Key": key_id, "Mallrun-Timestamp": str(timestamp), "Mallrun-Signature": f"v1,{signature}"}


class WebhookVerificationError(Exception):
    """A webhook that did not come from Mallrun, or not now: do not act on it (answer 400)."""


def webhook_verify(
    *, secret: str, headers: dict[str, str], body: bytes, now: float | None = None, tolerance: int = 300
) -> dict:
    """The event of a webhook, once its Standard Webhooks signature is checked: HMAC-SHA256 over
    `{webhook-id}.{webhook-timestamp}.{raw body}` keyed with the base64 after `whsec_`, any of
    the space-separated `v1,` signatures matching (constant-time), the timestamp within
    `tolerance` seconds. Verify the raw bytes received, before any JSON parsing."""
    headers = {name.lower(): value for name, value in headers.items()}
    event_id, timestamp, offered = (
        headers.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (event_id and timestamp.isdigit() and offered):
        raise WebhookVerificationError("missing or malformed webhook headers")
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        raise WebhookVerificationError("webhook timestamp too far from now")
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError:
        key = secret.encode()  # a secret issued before Mallrun used the Standard Webhooks form
    expected = (
        "v1,"
        + base64.b64encode(hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    )
    matched = False
    for signature in offered.split(" "):
        matched |= hmac.compare_digest(expected.encode(), signature.encode())
    if not matched:
        raise WebhookVerificationError("no matching webhook signature")
    return json.loads(body)


@dataclass
class ApiResponse:
    status: int
    document: dict
    headers: dict[str, str] = field(default_factory=dict)


class MallrunApiError(Exception):
    def __init__(self, response: ApiResponse) -> None:
        super().__init__(
            f"{response.status} {response.document.get('type', '')}: {response.document.get('detail', '')}"
        )
        self.response = response


class MallrunClient:
    def __init__(
        self, base_url: str, *, key_id: str, secret: str, timeout: float = 10, max_tries: int = 5, backoff: float = 0.5
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self.secret = secret
        self.timeout = timeout
        self.max_tries = max_tries
        self.backoff = backoff

    def request(self, method: str, path: str, document: dict | None = None) -> ApiResponse:
        """Sends one signed request, retrying network errors, 429 and 5xx. Every try is signed
        afresh (the timestamp moves) over the same body."""
        body = b"" if document is None else json.dumps(document, separators=(",", ":")).encode()
        url = self.base_url + path
        for attempt in range(1, self.max_tries + 1):
            headers = signed_headers(
                key_id=self.key_id, secret=self.secret, method=method, path_with_query=path, body=body
            )
            headers["Content-Type"] = "application/json"
            headers["Accept"] = "application/json, application/problem+json"
            request = urllib.request.Request(url, data=body or None, headers=headers, method=method)  # noqa: S310
            wait = self.backoff * 2 ** (attempt - 1) * (0.5 + random.random())  # noqa: S311 - jitter
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as raw:  # noqa: S310
                    return ApiResponse(raw.status, json.loads(raw.read() or b"{}"), dict(raw.headers))
            except urllib.error.HTTPError as error:
                response = ApiResponse(error.code, json.loads(error.read() or b"{}"), dict(error.headers))
                if error.code == 429:
                    wait = max(wait, float(error.headers.get("Retry-After", "1")))
                elif error.code < 500:
                    return response
                if attempt == self.max_tries:
                    return response
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if attempt == self.max_tries:
                    raise
            time.sleep(wait)
        raise AssertionError("unreachable")

    def create_order(self, order: dict) -> ApiResponse:
        """201 created, 200 when an earlier try had created it; raises on anything else."""
        response = self.request("POST", "/api/v1/orders", order)
        if response.status not in (200, 201):
            raise MallrunApiError(response)
        return response

    def get_order(self, marketplace_order_id: str) -> ApiResponse:
        return self.request("GET", f"/api/v1/orders/{marketplace_order_id}")

    def cancel_order(self, marketplace_order_id: str, reason: str = "customer_request") -> ApiResponse:
        return self.request("POST", f"/api/v1/orders/{marketplace_order_id}/cancel", {"reason": reason})

    def events(self, *, after: int = 0, limit: int = 100) -> ApiResponse:
        return self.request("GET", f"/api/v1/events?after={after}&limit={limit}")
