"""Operators' admin for the marketplace API: clients and their secrets, webhook endpoints, and
the webhook outbox (failed deliveries and their replay). A secret is shown once, on the page
that answers its creation or rotation, and never stored in plain form."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from orders.api.secrets import encrypt_secret, new_webhook_secret
from orders.api.services import (
    api_client_create,
    api_client_revoke,
    api_secret_revoke_old,
    api_secret_rotate,
    webhook_secret_rotate,
)
from orders.api.webhook_addresses import url_problem
from orders.models import ApiClient, ApiSecret, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from orders.outbox import webhook_delivery_replay
from portal.admin import OperatorAdmin


def secrets_page(request: HttpRequest, *, title: str, groups: list[dict], back_url: str) -> HttpResponse:
    response = TemplateResponse(
        request,
        "admin/orders/secret_shown.html",
        {**admin.site.each_context(request), "title": title, "groups": groups, "back_url": back_url},
    )
    response["Cache-Control"] = "no-store"
    return response


class _RevokedStaysRevoked:
    """Revoking is one way: a key that leaked stays dead, so unticking "revoked" is refused
    (rotate for a new secret, or create a new client)."""

    def clean_revoked(self) -> bool:
        revoked = self.cleaned_data["revoked"]
        if self.instance.pk is not None and self.instance.revoked and not revoked:
            raise forms.ValidationError(self.revoked_message)
        return revoked


class ApiSecretForm(_RevokedStaysRevoked, forms.ModelForm):
    revoked_message = "A revoked secret stays revoked: rotate to issue a new one."

    class Meta:
        model = ApiSecret
        fields = ["revoked"]


class ApiClientForm(_RevokedStaysRevoked, forms.ModelForm):
    revoked_message = "A revoked client stays revoked: create a new client for the marketplace."

    class Meta:
        model = ApiClient
        fields = ["name", "revoked"]


class ApiSecretInline(admin.TabularInline):
    model = ApiSecret
    form = ApiSecretForm
    fields = ["created_at", "revoked"]
    readonly_fields = ["created_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ApiClient)
class ApiClientAdmin(OperatorAdmin):
    form = ApiClientForm
    list_display = ["name", "key_id", "revoked", "created_at"]
    list_filter = ["revoked"]
    search_fields = ["name", "key_id"]
    readonly_fields = ["key_id", "created_at"]
    actions = ["rotate_secret", "finish_rotation", "revoke_clients"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return ["name"] if obj is None else ["name", "key_id", "revoked", "created_at"]

    def get_inlines(self, request: HttpRequest, obj=None) -> list:
        return [] if obj is None else [ApiSecretInline]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # orders keep their client: revoke instead

    def save_model(self, request: HttpRequest, obj: ApiClient, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_client_create(name=obj.name)
        obj.pk, obj.key_id, obj.created_at = issued.client.pk, issued.client.key_id, issued.client.created_at
        obj._state.adding = False  # the instance the admin keeps is now the saved row
        request._issued_secret = issued.secret

    def response_add(self, request: HttpRequest, obj: ApiClient, post_url_continue=None) -> HttpResponse:
        return secrets_page(
            request,
            title=f"Client {obj.name} created",
            groups=[{"heading": obj.name, "items": [("Key id", obj.key_id), ("Secret", request._issued_secret)]}],
            back_url=reverse("admin:orders_apiclient_changelist"),
        )

    @admin.action(description="Rotate: add a new secret (the old ones keep working until revoked)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        revoked = [client.name for client in queryset if client.revoked]
        if revoked:
            self.message_user(
                request,
                f"Not rotated: {', '.join(revoked)} revoked; a revoked client gets no new secret.",
                messages.ERROR,
            )
            return None
        groups = [
            {
                "heading": client.name,
                "items": [("Key id", client.key_id), ("New secret", api_secret_rotate(client=client))],
            }
            for client in queryset
        ]
        return secrets_page(
            request, title="New secrets", groups=groups, back_url=reverse("admin:orders_apiclient_changelist")
        )

    @admin.action(description="Finish rotation: revoke every secret but the newest")
    def finish_rotation(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = sum(api_secret_revoke_old(client=client) for client in queryset)
        self.message_user(request, f"Revoked {revoked} old secret(s).", messages.SUCCESS)

    @admin.action(description="Revoke the selected clients (their requests get 401)")
    def revoke_clients(self, request: HttpRequest, queryset: QuerySet) -> None:
        names = []
        for client in queryset.filter(revoked=False):
            api_client_revoke(client=client)
            names.append(client.name)
        if names:
            self.message_user(request, f"Revoked {len(names)}: {', '.join(names)}.", messages.SUCCESS)
        else:
            self.message_user(request, "The selected clients were already revoked.", messages.WARNING)


class WebhookEndpointForm(forms.ModelForm):
    # A URL typed without a scheme means https: webhooks carry signed order data.
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["client", "url", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if (problem := url_problem(url)) is not None:
            raise forms.ValidationError(problem)
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OperatorAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "client", "is_active", "created_at"]
    list_filter = ["is_active", "client"]
    fields = ["client", "url", "is_active"]
    actions = ["rotate_secret"]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form, change: bool) -> None:
        if not change:
            request._issued_secret = new_webhook_secret()
            obj.encrypted_secret = encrypt_secret(request._issued_secret)
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue=None) -> HttpResponse:
        return secrets_page(
            request,
            title="Webhook endpoint created",
            groups=[{"heading": obj.url, "items": [("Webhook secret", request._issued_secret)]}],
            back_url=reverse("admin:orders_webhookendpoint_changelist"),
        )

    @admin.action(description="Rotate the webhook secret")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        groups = [
            {"heading": endpoint.url, "items": [("New webhook secret", webhook_secret_rotate(endpoint=endpoint))]}
            for endpoint in queryset
        ]
        return secrets_page(
            request,
            title="New webhook secrets",
            groups=groups,
            back_url=reverse("admin:orders_webhookendpoint_changelist"),
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OperatorAdmin):
    time_zone_path = "order__store__mall"
    list_display = ["event_id", "event_type", "order", "endpoint", "status", "attempts", "due_at", "last_error"]
    list_filter = ["status", "endpoint"]
    list_select_related = ["event", "order", "endpoint"]
    search_fields = ["event__event_id", "order__marketplace_order_id"]
    actions = ["replay"]
    readonly_fields = [
        "event",
        "endpoint",
        "order",
        "status",
        "attempts",
        "due_at",
        "last_error",
        "last_attempt_at",
        "sent_at",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Event id", ordering="event__event_id")
    def event_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.event_id

    @admin.display(description="Type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.action(description="Replay the selected failed deliveries")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        replayed = webhook_delivery_replay(deliveries=list(queryset.filter(status=DeliveryStatus.FAILED)))
        if replayed:
            self.message_user(request, f"Queued {replayed} failed delivery(ies) to be sent again.", messages.SUCCESS)
        else:
            self.message_user(
                request, "None of the selected deliveries had failed: nothing to replay.", messages.WARNING
            )
