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


class ApiSecretInline(admin.TabularInline):
    model = ApiSecret
    fields = ["created_at", "revoked"]
    readonly_fields = ["created_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ApiClient)
class ApiClientAdmin(OperatorAdmin):
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
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
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
        for client in queryset:
            api_client_revoke(client=client)
        self.message_user(request, f"Revoked {queryset.count()} client(s).", messages.SUCCESS)


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
        self.message_user(request, f"Queued {replayed} failed delivery(ies) to be sent again.", messages.SUCCESS)
