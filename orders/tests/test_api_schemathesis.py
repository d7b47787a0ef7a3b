"""Schemathesis against the served OpenAPI document, over a live server with signed requests:
the examples, coverage and fuzzing phases per operation, then the stateful phase along the
document's links (create → read → cancel). Example counts are bounded to keep the suite short."""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from orders.api.client import signed_headers
from orders.api.views import api
from orders.tests.api_helpers import make_api_client, make_world

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, negative_data_rejection]
SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)

schema = schemathesis.openapi.from_dict(api.get_openapi_schema())


class Signer(requests.auth.AuthBase):
    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id, self.secret = key_id, secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "Mallrun-Key" not in request.headers:
            return request  # a negative case without the key: it must answer 401 unsigned
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        request.headers.update(
            signed_headers(
                key_id=self.key_id,
                secret=self.secret,
                method=request.method,
                path_with_query=request.path_url,
                body=body,
            )
        )
        return request


@pytest.fixture
def signed_session(live_server, transactional_db):
    make_world(on_hand=10_000)
    issued = make_api_client()
    session = requests.Session()
    session.auth = Signer(issued.client.key_id, issued.secret)
    yield live_server.url, session
    # Ends the keep-alive connection, so the server thread closes its database connection.
    session.close()


@pytest.fixture(autouse=True)
def _unlimited(settings):
    # Schemathesis sends faster than the contract's 50 a second: lift the limit, not the checks.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


@schema.parametrize()
@SETTINGS
def test_api_conforms_to_its_openapi_document(case, signed_session):
    base_url, session = signed_session

    case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)


def test_api_stateful_links_conform_to_its_openapi_document(signed_session):
    base_url, session = signed_session

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"base_url": base_url, "session": session}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(settings=settings(SETTINGS, max_examples=10, stateful_step_count=6))
