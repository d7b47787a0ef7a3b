from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from orders.models import Order, OrderEvent, OrderLine, Package
from orders.services import order_cancel
from portal.admin import ReadOnlyInline, SellerScopedAdmin, is_operator
from portal.errors import ActionRefused
from portal.localtime import in_zone


class CancelOrdersForm(forms.Form):
    reason = forms.CharField(
        label="Why (the marketplace and the store see it)",
        max_length=300,
        required=False,
        help_text="Leave empty for “Cancelled by an operator in the admin.”",
        widget=forms.TextInput(attrs={"size": 60}),
    )


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    seller_path = "order__store__seller"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("listing")


class PackageInline(ReadOnlyInline):
    model = Package
    seller_path = "order__store__seller"


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    seller_path = "order__store__seller"
    fields = ["at", "type", "from_status", "to_status", "actor_label", "reason"]


@admin.register(Order)
class OrderAdmin(SellerScopedAdmin):
    """Orders change only through orders.services: the admin shows them and offers the
    operator actions (cancel), never a raw edit."""

    time_zone_path = "store__mall"

    seller_path = "store__seller"
    manager_permissions = frozenset({"view", "cancel"})
    list_display = ["marketplace_order_id", "store", "mall", "status", "placed_at", "deliver_by_local"]
    list_filter = ["status", "store", "store__mall"]
    list_select_related = ["store__mall"]
    search_fields = ["marketplace_order_id", "=packages__label_code"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline, PackageInline, OrderEventInline]
    actions = ["cancel_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "cancel")

    @admin.display(description="Mall", ordering="store__mall__name")
    def mall(self, order: Order) -> str:
        return order.store.mall.name

    @admin.display(description="Deliver by (mall time)", ordering="deliver_by")
    def deliver_by_local(self, order: Order) -> str:
        return in_zone(order.deliver_by, order.store.mall.tz, "D H:i T")

    @admin.action(description="Cancel selected orders…", permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        """A page that lists the orders and asks why first (the marketplace and the stores are
        told); its confirmation cancels them. `queryset` comes from get_queryset: a manager's
        selection of another seller's order is not in it."""
        form = CancelOrdersForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/orders/order/cancel_selected.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Cancel orders",
                    "opts": self.opts,
                    "orders": queryset.select_related("store__mall").order_by("pk"),
                    "form": form,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
                status=422 if form.is_bound else 200,
            )
        who = "an operator" if is_operator(request.user) else "the seller"
        reason = form.cleaned_data["reason"] or f"Cancelled by {who} in the admin."
        cancelled, refused = [], []
        for order in queryset.select_related("store"):
            try:
                order_cancel(order=order, acting_user=request.user, reason=reason)
            except ActionRefused as refusal:
                refused.append(refusal.message)
            else:
                cancelled.append(order.number)
        if cancelled:
            self.message_user(request, f"Cancelled {len(cancelled)}: {', '.join(cancelled)}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, f"Not cancelled: {message}", messages.WARNING)


# The marketplace API admin (clients, keys, webhook endpoints, deliveries) lives with the API.
import orders.api.admin  # noqa: E402, F401
