import re

import pytest
from django.urls import reverse

from orders.api.secrets import decrypt_secret
from orders.models import ApiClient, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed
from portal.tests.factories import make_seller, make_seller_manager, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = make_user(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def _shown(response, label: str) -> str:
    match = re.search(rf"<dt>{label}</dt>\s*<dd><code>([^<]+)</code></dd>", response.content.decode())
    assert match, response.content.decode()
    return match.group(1)


def test_api_client_add_shows_the_secret_once_and_stores_it_encrypted(client, operator):
    response = client.post(reverse("admin:orders_apiclient_add"), {"name": "marketplace"})

    created = ApiClient.objects.get(name="marketplace")
    secret = _shown(response, "Secret")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("no-store")
    assert _shown(response, "Key id") == created.key_id
    assert decrypt_secret(created.secrets.get().encrypted_secret) == secret
    assert secret not in client.get(reverse("admin:orders_apiclient_change", args=[created.pk])).content.decode()


def test_api_client_rotate_action_adds_a_secret_and_finish_rotation_revokes_the_old(client, operator):
    issued = make_api_client()
    url = reverse("admin:orders_apiclient_changelist")

    response = client.post(url, {"action": "rotate_secret", "_selected_action": [issued.client.pk]})
    new_secret = _shown(response, "New secret")
    client.post(url, {"action": "finish_rotation", "_selected_action": [issued.client.pk]})

    active = [decrypt_secret(row.encrypted_secret) for row in issued.client.secrets.filter(revoked=False)]
    assert active == [new_secret]
    assert issued.client.secrets.filter(revoked=True).count() == 1


def test_api_client_revoke_action_makes_requests_answer_401(client, operator):
    issued = make_api_client()

    client.post(
        reverse("admin:orders_apiclient_changelist"),
        {"action": "revoke_clients", "_selected_action": [issued.client.pk]},
    )

    assert signed(issued, "GET", "/api/v1/events").status_code == 401


def test_webhook_endpoint_add_shows_its_secret_once(client, operator):
    issued = make_api_client()

    response = client.post(
        reverse("admin:orders_webhookendpoint_add"),
        {"client": issued.client.pk, "url": "https://hooks.example/mallrun", "is_active": "on"},
    )

    endpoint = WebhookEndpoint.objects.get()
    assert decrypt_secret(endpoint.encrypted_secret) == _shown(response, "Webhook secret")


def test_webhook_endpoint_url_typed_without_scheme_is_https(client, operator):
    issued = make_api_client()

    client.post(
        reverse("admin:orders_webhookendpoint_add"),
        {"client": issued.client.pk, "url": "hooks.example/mallrun", "is_active": "on"},
    )

    assert WebhookEndpoint.objects.get().url == "https://hooks.example/mallrun"


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _change_client(client, issued, *, revoked: bool, secret_revoked: bool):
    secret = issued.client.secrets.get()
    data = {
        "name": issued.client.name,
        "secrets-TOTAL_FORMS": "1",
        "secrets-INITIAL_FORMS": "1",
        "secrets-MIN_NUM_FORMS": "0",
        "secrets-MAX_NUM_FORMS": "1000",
        "secrets-0-id": str(secret.pk),
        "secrets-0-client": str(issued.client.pk),
    }
    if revoked:
        data["revoked"] = "on"
    if secret_revoked:
        data["secrets-0-revoked"] = "on"
    return client.post(reverse("admin:orders_apiclient_change", args=[issued.client.pk]), data)


def test_api_client_revoked_in_the_admin_cannot_be_unrevoked(client, operator):
    issued = make_api_client()
    ApiClient.objects.filter(pk=issued.client.pk).update(revoked=True)

    response = _change_client(client, issued, revoked=False, secret_revoked=False)

    assert response.status_code == 200
    assert "A revoked client stays revoked: create a new client for the marketplace." in response.content.decode()
    assert ApiClient.objects.get(pk=issued.client.pk).revoked is True


def test_api_secret_revoked_in_the_admin_cannot_be_unrevoked(client, operator):
    issued = make_api_client()
    issued.client.secrets.update(revoked=True)

    response = _change_client(client, issued, revoked=False, secret_revoked=False)

    assert response.status_code == 200
    assert "A revoked secret stays revoked: rotate to issue a new one." in response.content.decode()
    assert list(issued.client.secrets.values_list("revoked", flat=True)) == [True]
    assert signed(issued, "GET", "/api/v1/events").status_code == 401


def test_api_client_change_can_still_revoke_a_secret(client, operator):
    issued = make_api_client()

    response = _change_client(client, issued, revoked=False, secret_revoked=True)

    assert response.status_code == 302
    assert list(issued.client.secrets.values_list("revoked", flat=True)) == [True]


def test_api_client_actions_on_revoked_clients_say_so_and_issue_nothing(client, operator):
    issued = make_api_client()
    ApiClient.objects.filter(pk=issued.client.pk).update(revoked=True)
    url = reverse("admin:orders_apiclient_changelist")

    rotated = client.post(url, {"action": "rotate_secret", "_selected_action": [issued.client.pk]}, follow=True)
    revoked = client.post(url, {"action": "revoke_clients", "_selected_action": [issued.client.pk]}, follow=True)

    assert _messages(rotated) == [f"Not rotated: {issued.client.name} revoked; a revoked client gets no new secret."]
    assert issued.client.secrets.count() == 1
    assert _messages(revoked) == ["The selected clients were already revoked."]


def test_webhook_delivery_replay_of_deliveries_that_had_not_failed_says_so(client, operator):
    make_world()
    issued = make_api_client(webhook_url="http://127.0.0.1:9/hooks")
    signed(issued, "POST", "/api/v1/orders", order_document())
    delivery = WebhookDelivery.objects.get()

    response = client.post(
        reverse("admin:orders_webhookdelivery_changelist"),
        {"action": "replay", "_selected_action": [delivery.pk]},
        follow=True,
    )

    assert _messages(response) == ["None of the selected deliveries had failed: nothing to replay."]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING


def test_webhook_delivery_replay_action_requeues_failed_deliveries(client, operator):
    make_world()
    issued = make_api_client(webhook_url="http://127.0.0.1:9/hooks")
    signed(issued, "POST", "/api/v1/orders", order_document())
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, attempts=13, last_error="HTTP 500")
    delivery = WebhookDelivery.objects.get()

    listing = client.get(reverse("admin:orders_webhookdelivery_changelist") + "?status__exact=failed")
    client.post(
        reverse("admin:orders_webhookdelivery_changelist"), {"action": "replay", "_selected_action": [delivery.pk]}
    )

    delivery.refresh_from_db()
    assert "HTTP 500" in listing.content.decode()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)


@pytest.mark.parametrize(
    "name",
    [
        "admin:orders_apiclient_changelist",
        "admin:orders_webhookendpoint_changelist",
        "admin:orders_webhookdelivery_changelist",
    ],
)
def test_api_admin_is_for_operators_only_seller_manager_gets_403(client, name):
    make_api_client()
    client.force_login(make_seller_manager(seller=make_seller()).user)

    response = client.get(reverse(name))

    assert response.status_code == 403
