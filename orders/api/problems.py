"""RFC 9457 problem documents: every error of the API is one of these, never HTML."""

import json
from http import HTTPStatus

from django.http import HttpResponse

PROBLEM_BASE = "https://mallrun.example/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

TITLES = {
    "invalid-signature": "The request signature is not valid",
    "validation-error": "The request is not valid",
    "not-eligible": "No store can fulfil this order same-day",
    "idempotency-conflict": "This order id was already used with a different body",
    "not-found": "Not found",
    "conflict": "The order can no longer change this way",
    "rate-limited": "Too many requests",
    "method-not-allowed": "Method not allowed",
}


class Problem(Exception):  # noqa: N818 - it is the answer, not a failure of ours
    def __init__(self, code: str, status: int, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}

    def document(self) -> dict:
        return {
            "type": PROBLEM_BASE + self.code,
            "title": TITLES.get(self.code, HTTPStatus(self.status).phrase),
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }

    def response(self) -> HttpResponse:
        response = HttpResponse(json.dumps(self.document()), status=self.status, content_type=PROBLEM_CONTENT_TYPE)
        for name, value in self.headers.items():
            response[name] = value
        return response


# RFC 9110 (11.6.1): a 401 carries a challenge naming how to authenticate; here the contract's
# signing scheme (Mallrun-Key, Mallrun-Timestamp and Mallrun-Signature headers).
CHALLENGE = 'Mallrun-Signature realm="Mallrun marketplace API"'


def invalid_signature() -> Problem:
    # One message for every cause: the answer must not tell which part was wrong.
    problem = Problem("invalid-signature", 401, "The request could not be authenticated.")
    problem.headers["WWW-Authenticate"] = CHALLENGE
    return problem


def validation_error(errors: list[dict[str, str]]) -> Problem:
    return Problem("validation-error", 422, "Some fields are not valid.", errors=errors)


def not_found(detail: str = "There is no such order.") -> Problem:
    return Problem("not-found", 404, detail)
