"""Webhooks go to public addresses only (orders.api.webhook_addresses): the URL an operator
types, the address each send connects to, and no redirects."""

import io
import urllib.error
import urllib.request

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse

from orders.api.webhook_addresses import is_public, opener, url_problem
from orders.models import WebhookEndpoint
from orders.outbox import _post
from orders.tests.api_helpers import make_api_client
from orders.tests.webhook_receiver import Receiver

PRODUCTION = override_settings(WEBHOOK_ALLOW_PRIVATE_ADDRESSES=False)
DEVELOPMENT = override_settings(WEBHOOK_ALLOW_PRIVATE_ADDRESSES=True)
HTTPS_ONLY = "Use an https:// URL: webhooks carry signed order data."


@pytest.fixture
def operator(client):
    from portal.tests.factories import make_user

    user = make_user(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(**fields) -> Receiver:
        started.append(Receiver(**fields).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


@PRODUCTION
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/mallrun", HTTPS_ONLY),
        ("ftp://hooks.example.com/mallrun", HTTPS_ONLY),
        ("https://localhost:8000/admin/", "localhost is not a public host name: give the receiver's public address."),
        (
            "https://metadata.google.internal/",
            "metadata.google.internal is not a public host name: give the receiver's public address.",
        ),
        ("https://intranet/hooks", "intranet is not a public host name: give the receiver's public address."),
        (
            "https://169.254.169.254/latest/meta-data",
            "169.254.169.254 is not a public address: give the receiver's public address.",
        ),
        ("https://10.0.0.7/hooks", "10.0.0.7 is not a public address: give the receiver's public address."),
        ("https://127.0.0.1/hooks", "127.0.0.1 is not a public address: give the receiver's public address."),
        ("https://[::1]/hooks", "::1 is not a public address: give the receiver's public address."),
        (
            "https://[::ffff:192.168.1.1]/",
            "::ffff:192.168.1.1 is not a public address: give the receiver's public address.",
        ),
        ("https://0.0.0.0/hooks", "0.0.0.0 is not a public address: give the receiver's public address."),
        ("https:///hooks", "Give the receiver's host name."),
        ("https://hooks.example.com/mallrun", None),
        ("https://93.184.215.14:8443/mallrun", None),
    ],
)
def test_webhook_url_in_production_must_be_https_to_a_public_host(url, problem):
    assert url_problem(url) == problem


@DEVELOPMENT
def test_webhook_url_in_development_may_be_a_local_http_receiver():
    assert url_problem("http://127.0.0.1:8025/hooks") is None
    assert url_problem("ftp://127.0.0.1/hooks") == HTTPS_ONLY


def test_public_addresses_are_told_from_internal_ones():
    assert [is_public(address) for address in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]] == [
        True,
        True,
    ]
    internal = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
                "0.0.0.0", "::1", "fe80::1%eth0", "fd00::1", "::ffff:127.0.0.1"]  # fmt: skip  # noqa: S104
    assert [address for address in internal if is_public(address)] == []


@PRODUCTION
def test_webhook_send_refuses_a_peer_that_is_not_public_before_sending_anything(receivers):
    receiver = receivers()
    request = urllib.request.Request(receiver.url, data=b"{}", method="POST")  # noqa: S310 - the test's receiver

    with pytest.raises(urllib.error.URLError, match=r"127\.0\.0\.1 is at 127\.0\.0\.1, which is not a public address"):
        opener().open(request, timeout=5)

    assert receiver.received == []


@PRODUCTION
def test_webhook_send_to_an_endpoint_saved_before_the_rule_is_an_error_not_a_request(receivers):
    receiver = receivers()

    assert _post(receiver.url, b"{}", {}) == HTTPS_ONLY
    assert receiver.received == []


@DEVELOPMENT
def test_webhook_send_does_not_follow_a_redirect(receivers):
    elsewhere = receivers()
    redirecting = receivers(statuses=[302], location=elsewhere.url)

    assert _post(redirecting.url, b"{}", {"content-type": "application/json"}) == "HTTP 302"
    assert (len(redirecting.received), elsewhere.received) == (1, [])


@PRODUCTION
@pytest.mark.django_db
def test_webhook_endpoint_admin_refuses_an_internal_address_and_saves_nothing(client, operator):
    issued = make_api_client()

    response = client.post(
        reverse("admin:orders_webhookendpoint_add"),
        {"client": issued.client.pk, "url": "169.254.169.254/latest/meta-data", "is_active": "on"},
    )

    assert response.status_code == 200
    assert "169.254.169.254 is not a public address: give the receiver&#x27;s public address." in (
        response.content.decode()
    )
    assert WebhookEndpoint.objects.count() == 0


@PRODUCTION
@pytest.mark.django_db
def test_create_api_client_refuses_a_local_webhook_url_and_creates_nothing():
    from orders.models import ApiClient

    with pytest.raises(CommandError, match="http://localhost:9000/hooks: Use an https:// URL"):
        call_command("create_api_client", "acme", "--webhook-url", "http://localhost:9000/hooks", stdout=io.StringIO())

    assert ApiClient.objects.count() == 0
