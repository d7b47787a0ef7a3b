from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest

from portal.admin import (
    OperatorAdmin,
    SellerScopedAdmin,
    SellerScopedTabularInline,
    is_operator,
)
from portal.errors import ActionRefused
from portal.localtime import in_zone
from retailers.admin_lifecycle import StoreLifecycleAdminMixin
from retailers.eligibility_hooks import eligibility_after_listing_change, eligibility_after_stock_change
from retailers.models import (
    Listing,
    Mall,
    Market,
    Seller,
    SellerMembership,
    Stock,
    Store,
    StoreHours,
    StoreMembership,
    StoreStatus,
    normalize_category,
)
from retailers.services import (
    STORE_TRANSITIONS,
    store_pause,
    store_record_added,
    store_resume,
    store_review,
    store_update_settings,
)
from retailers.stock_services import stock_set_on_hand, units

SETTINGS_FIELDS = ("same_day_cutoff", "prep_sla_minutes", "hourly_capacity", "pickup_instructions")
PAUSE_RESUME = {(StoreStatus.LIVE, StoreStatus.PAUSED), (StoreStatus.PAUSED, StoreStatus.LIVE)}
PRE_ONBOARDING = frozenset({StoreStatus.APPLIED, StoreStatus.APPROVED, StoreStatus.REJECTED})
NEW_STORE_STATUSES = frozenset({StoreStatus.APPLIED, StoreStatus.APPROVED, StoreStatus.ONBOARDING})


class MallInline(admin.TabularInline):
    model = Mall
    fields = ["name", "slug", "time_zone", "delivery_radius_miles"]
    extra = 0
    show_change_link = True


@admin.register(Market)
class MarketAdmin(OperatorAdmin):
    list_display = ["name", "slug", "time_zone", "auto_go_live"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MallInline]

    def save_model(self, request: HttpRequest, obj: Market, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "time_zone" in form.changed_data:
            # Its drivers' documents now expire at another instant (imported here: the drivers
            # app builds on this one, not the other way round).
            from drivers.services import documents_refresh_valid_until

            documents_refresh_valid_until(market_ids=[obj.pk])


@admin.register(Mall)
class MallAdmin(OperatorAdmin):
    list_display = ["name", "market", "time_zone", "delivery_radius_miles", "address"]
    list_filter = ["market", "time_zone"]
    list_select_related = ["market"]
    search_fields = ["name", "slug", "address"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Seller)
class SellerAdmin(SellerScopedAdmin):
    seller_path = ""
    manager_permissions = frozenset({"view"})
    list_display = ["name", "marketplace_seller_id"]
    search_fields = ["name", "marketplace_seller_id"]


@admin.register(SellerMembership)
class SellerMembershipAdmin(OperatorAdmin):
    list_display = ["user", "seller", "created_at"]
    list_select_related = ["user", "seller"]
    list_filter = ["seller"]
    search_fields = ["user__username", "user__email", "seller__name"]
    raw_id_fields = ["user"]
    autocomplete_fields = ["seller"]

    def save_model(self, request: HttpRequest, obj: SellerMembership, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # A seller manager works in the admin, which only staff users may open (portal.admin
        # scopes what they see there to their sellers; no model permission is given).
        if not obj.user.is_staff:
            obj.user.is_staff = True
            obj.user.save(update_fields=["is_staff"])
            self.message_user(request, f"{obj.user} can now log in to the admin and sees {obj.seller}'s rows only.")


class StoreHoursInline(SellerScopedTabularInline):
    model = StoreHours
    seller_path = "store__seller"
    extra = 0
    max_num = 7


class StoreMembershipInline(SellerScopedTabularInline):
    """Managers see who works at their stores; inviting people is an operator's job (choosing a
    user would list every account on the platform)."""

    model = StoreMembership
    seller_path = "store__seller"
    manager_permissions = frozenset({"view"})
    fields = ["user", "role", "is_active"]
    raw_id_fields = ["user"]
    extra = 0

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("user", "store")


class StoreAdminForm(forms.ModelForm):
    class Meta:
        model = Store
        fields = [
            "seller",
            "mall",
            "name",
            "unit",
            "pickup_instructions",
            "same_day_cutoff",
            "prep_sla_minutes",
            "hourly_capacity",
            "status",
            "paused_reason",
        ]

    request: HttpRequest | None = None

    def clean(self):
        cleaned = super().clean()
        old = self.initial.get("status") if self.instance.pk else None
        new = cleaned.get("status")
        if (
            self.request is not None
            and not is_operator(self.request.user)
            and new is not None
            and new != (old or StoreStatus.APPLIED)
            and (old, new) not in PAUSE_RESUME
        ):
            self.add_error("status", "Only an operator can change the onboarding status; you can pause or resume.")
        elif self.instance.pk is None and new is not None and new not in NEW_STORE_STATUSES:
            # A store added here goes live as every store does: from its onboarding checklist.
            self.add_error(
                "status",
                "A new store starts as applied, approved or onboarding: it goes live with Go live once its "
                "onboarding checklist is complete.",
            )
        elif (
            self.instance.pk
            and new is not None
            and new != old
            and (old, new) not in PAUSE_RESUME
            and not (old in PRE_ONBOARDING and new in PRE_ONBOARDING | {StoreStatus.ONBOARDING})
        ):
            # Go live, suspend and reinstate check their rules and record who and why.
            self.add_error("status", "Use Go live, Suspend or Reinstate at the top of this page to change the status.")
        elif self.instance.pk and new is not None and new != old and new not in STORE_TRANSITIONS[old]:
            # Before onboarding the status is chosen here; it still follows the lifecycle.
            self.add_error(
                "status",
                f"A store cannot go from {StoreStatus(old).label.lower()} to {StoreStatus(new).label.lower()}.",
            )
        if new == StoreStatus.PAUSED and not (cleaned.get("paused_reason") or "").strip():
            self.add_error("paused_reason", "Say why same-day is paused; everyone on the board will see it.")
        return cleaned


@admin.register(Store)
class StoreAdmin(StoreLifecycleAdminMixin, SellerScopedAdmin):
    time_zone_path = "mall"
    form = StoreAdminForm
    manager_open_models = frozenset({"retailers.mall"})
    list_display = ["name", "seller", "mall", "unit", "status", "prep_sla_minutes", "hourly_capacity"]
    list_filter = ["status", "mall", "seller"]
    list_select_related = ["seller", "mall"]
    search_fields = ["name", "unit", "mall__name"]
    readonly_fields = ["paused_since", "paused_by", "last_updated", "history"]
    inlines = [StoreHoursInline, StoreMembershipInline]

    @admin.display(description="Paused since (mall time)")
    def paused_since(self, store: Store) -> str:
        return in_zone(store.paused_at, store.mall.tz)

    @admin.display(description="Last updated (mall time)")
    def last_updated(self, store: Store) -> str:
        return in_zone(store.updated_at, store.mall.tz)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # A store is one seller's shop in one mall: its orders, routes, hours (in the mall's time
        # zone) and eligibility results belong to that mall, and moving it would leave the old
        # mall's same-day results standing. A store elsewhere is a new store.
        fixed = ["seller", "mall"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request: HttpRequest, obj: Store, form, change: bool) -> None:
        if change:
            # Same-day settings and hours go through store_update_settings in save_related, so
            # the change is recorded as a store event: keep the stored values for now.
            before = Store.objects.get(pk=obj.pk)
            form.store_settings = {name: getattr(obj, name) for name in SETTINGS_FIELDS}
            for name in SETTINGS_FIELDS:
                setattr(obj, name, getattr(before, name))
        old = form.initial.get("status") if change else None
        new = obj.status
        if change and old in PRE_ONBOARDING and new != old:
            # Through the service: the transition is checked and recorded (who, when).
            obj.status = old
            super().save_model(request, obj, form, change)
            try:
                store_review(store=obj, acting_user=request.user, to=new)
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
            return
        if (old, new) not in PAUSE_RESUME:
            super().save_model(request, obj, form, change)
            return
        # Pause and resume have services (event row, who and when): save the other fields
        # first, then let the service move the status.
        reason = obj.paused_reason
        obj.status = old
        if new == StoreStatus.LIVE:
            obj.paused_reason = Store.objects.values_list("paused_reason", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        try:
            if new == StoreStatus.PAUSED:
                store_pause(store=obj, acting_user=request.user, reason=reason)
            else:
                store_resume(store=obj, acting_user=request.user)
        except ActionRefused as refused:
            self.message_user(request, refused.message, messages.ERROR)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        if not change:
            super().save_related(request, form, formsets, change)
            store_record_added(store=form.instance, acting_user=request.user)
            return
        form.save_m2m()
        hours: dict[int, tuple | None] = {}
        for formset in formsets:
            if formset.model is StoreHours:
                hours = _hours_from(formset)
                # The admin's change message reads these; the store event has the detail.
                formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            else:
                self.save_formset(request, form, formset, change=change)
        store_update_settings(store=form.instance, acting_user=request.user, hours=hours, **form.store_settings)


def _hours_from(formset) -> dict[int, tuple | None]:
    """weekday → (opens, closes), or None for a day whose row was deleted or moved."""
    hours: dict[int, tuple | None] = {}
    for row in formset.forms:
        data = getattr(row, "cleaned_data", None)
        if not data:
            continue
        stored = row.instance.weekday if row.instance.pk else None
        if data.get("DELETE"):
            if stored is not None:
                hours.setdefault(stored, None)
            continue
        hours[data["weekday"]] = (data["opens_at"], data["closes_at"])
        if stored is not None and stored != data["weekday"]:
            hours.setdefault(stored, None)
    return hours


class ListingAdminForm(forms.ModelForm):
    class Meta:
        model = Listing
        fields = [
            "seller",
            "seller_sku",
            "marketplace_item_id",
            "title",
            "category",
            "weight_grams",
            "size_class",
            "hazmat",
        ]

    def clean_category(self) -> str:
        # Stored as the import stores it, so the program limits' category check matches.
        return normalize_category(self.cleaned_data["category"])


@admin.register(Listing)
class ListingAdmin(SellerScopedAdmin):
    form = ListingAdminForm
    list_display = ["seller_sku", "title", "seller", "category", "size_class", "weight_grams", "hazmat"]
    list_filter = ["category", "size_class", "hazmat", "seller"]
    list_select_related = ["seller"]
    search_fields = ["seller_sku", "title"]
    ordering = ["seller", "seller_sku"]

    def save_model(self, request: HttpRequest, obj: Listing, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Weight, size, hazmat and category decide eligibility: a new or changed listing is
        # recomputed by the next sweep (seconds), not the nightly run.
        eligibility_after_listing_change(listing_ids=[obj.pk])


class StockAdminForm(forms.ModelForm):
    class Meta:
        model = Stock
        fields = ["store", "listing", "on_hand"]

    def clean_on_hand(self) -> int:
        on_hand = self.cleaned_data["on_hand"]
        if on_hand < self.instance.reserved:
            raise forms.ValidationError(
                f"{units(self.instance.reserved)} {'is' if self.instance.reserved == 1 else 'are'} reserved by open "
                "orders: on hand cannot be below that."
            )
        return on_hand

    def clean(self):
        cleaned = super().clean()
        store, listing = cleaned.get("store"), cleaned.get("listing")
        if store is not None and listing is not None and listing.seller_id != store.seller_id:
            self.add_error(
                "listing", f"{listing.seller_sku} is not sold by {store.seller}, the seller of {store.name}."
            )
        return cleaned


class StockChangeListForm(StockAdminForm):
    class Meta:
        model = Stock
        fields = ["on_hand"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The list's inputs have no <label>: each names its row for screen readers (axe "label").
        stock = self.instance
        if stock.listing_id is not None and stock.store_id is not None:
            label = f"On hand of {stock.listing.seller_sku} at {stock.store.name}"
            self.fields["on_hand"].widget.attrs["aria-label"] = label


@admin.register(Stock)
class StockAdmin(SellerScopedAdmin):
    time_zone_path = "store__mall"
    seller_path = "store__seller"
    form = StockAdminForm
    list_display = ["listing", "store", "mall", "on_hand", "reserved", "available"]
    list_editable = ["on_hand"]
    list_filter = ["store", "store__mall"]
    list_select_related = ["listing", "store__mall"]
    search_fields = ["listing__seller_sku", "listing__title", "store__name"]
    autocomplete_fields = ["store", "listing"]
    readonly_fields = ["reserved", "available", "updated_at"]

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        return StockChangeListForm

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # A stock row is one listing at one store: moving it would be a different row.
        fixed = ["store", "listing"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: Stock, form, change: bool) -> None:
        # Through the service: it writes the store event and queues the eligibility recompute.
        try:
            stock = stock_set_on_hand(
                store=obj.store, listing=obj.listing, on_hand=obj.on_hand, acting_user=request.user
            )
        except ActionRefused as refused:
            # The form checked this already; an order reserving units in between lands here.
            self.message_user(request, refused.message, messages.ERROR)
            return
        obj.pk, obj.reserved, obj.updated_at = stock.pk, stock.reserved, stock.updated_at

    def get_deleted_objects(self, objs, request: HttpRequest):
        # Reserved units belong to open orders, whose cancel or reject gives them back to this
        # row: listed as protected, so the delete page says why and deletes nothing.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        held = [
            f"{stock.listing.seller_sku} at {stock.store.name}: {units(stock.reserved)} reserved by open orders"
            for stock in objs
            if stock.reserved
        ]
        return deleted, model_count, perms_needed, [*protected, *held]

    @transaction.atomic
    def delete_model(self, request: HttpRequest, obj: Stock) -> None:
        super().delete_model(request, obj)
        eligibility_after_stock_change(listing_ids=[obj.listing_id])

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        # The listings lose these units: their eligibility is recomputed like after any stock edit.
        listing_ids = list(queryset.values_list("listing_id", flat=True))
        super().delete_queryset(request, queryset)
        eligibility_after_stock_change(listing_ids=listing_ids)

    @admin.display(description="Mall", ordering="store__mall__name")
    def mall(self, stock: Stock) -> str:
        return stock.store.mall.name

    @admin.display(description="Available")
    def available(self, stock: Stock) -> int:
        return stock.available


# Same-day eligibility views (engineer F, issue 5): results admin and the listing page's per-mall inline.
import retailers.admin_eligibility  # noqa: E402, F401

# Bulk import of listings and stock (engineer K, issue 5 point 5).
import retailers.admin_import  # noqa: E402, F401

# The program limits: operators only (one row).
import retailers.admin_limits  # noqa: E402, F401

# Store applications: operator review (issue 6 part A).
from retailers import admin_applications  # noqa: E402, F401
