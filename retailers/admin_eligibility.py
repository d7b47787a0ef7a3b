"""Same-day eligibility in the admin: seller managers see their own listings' results per mall,
why not and what would fix it; operators see everything. Registered from retailers/admin.py."""

import csv

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from portal.admin import ReadOnlyInline, SellerScopedAdmin, is_operator, managed_seller_ids
from retailers.eligibility import BIT, REASON_CODES, REASON_LABELS
from retailers.models import EligibilityResult, Store, result_pair

CSV_COLUMNS = ["seller_id", "sku", "title", "mall", "eligible", "reasons", "hint", "eligible_until", "computed_at"]


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [(code, REASON_LABELS[code]) for code in REASON_CODES]

    def queryset(self, request, queryset):
        code = self.value()
        if code not in BIT:
            return queryset
        return queryset.annotate(_reason=F("reason_bits").bitand(BIT[code])).filter(_reason=BIT[code])


class StoreFilter(admin.SimpleListFilter):
    """A store's results: its seller's listings in its mall."""

    title = "store"
    parameter_name = "store"

    def _stores(self, request) -> QuerySet:
        stores = Store.objects.select_related("mall").order_by("name")
        if not is_operator(request.user):
            stores = stores.filter(seller_id__in=managed_seller_ids(request))
        return stores

    def lookups(self, request, model_admin):
        return [(str(store.pk), store.name) for store in self._stores(request)]

    def queryset(self, request, queryset):
        if not self.value() or not self.value().isdigit():
            return queryset
        store = self._stores(request).filter(pk=int(self.value())).first()
        if store is None:
            return queryset.none()
        return queryset.filter(mall_id=store.mall_id, listing__seller_id=store.seller_id)


def _local(value, mall) -> str:
    return value.astimezone(mall.tz).strftime("%Y-%m-%d %H:%M %Z") if value else "—"


class _EligibilityDisplay:
    class Media:
        css = {"all": ["css/eligibility-admin.css"]}

    # The mall as text: a readonly foreign key would link to the mall's admin page, which only
    # operators may open (a seller manager got a 403).
    @admin.display(description="Mall", ordering="mall__name")
    def mall_name(self, result: EligibilityResult) -> str:
        return result.mall.name

    @admin.display(description="Same-day", ordering="eligible")
    def badge(self, result: EligibilityResult) -> str:
        css, label = ("elig-yes", "Eligible") if result.eligible else ("elig-no", "Not eligible")
        return format_html('<span class="elig-badge {}">{}</span>', css, label)

    @admin.display(description="Why not")
    def reason_list(self, result: EligibilityResult) -> str:
        return "; ".join(REASON_LABELS[code] for code in result.reasons) or "—"

    @admin.display(description="Eligible until (mall time)", ordering="eligible_until")
    def until_local(self, result: EligibilityResult) -> str:
        return _local(result.eligible_until, result.mall)

    @admin.display(description="Computed (mall time)", ordering="computed_at")
    def computed_local(self, result: EligibilityResult) -> str:
        return _local(result.computed_at, result.mall)


@admin.register(EligibilityResult)
class EligibilityResultAdmin(_EligibilityDisplay, SellerScopedAdmin):
    time_zone_path = "mall"
    seller_path = "listing__seller"
    manager_permissions = frozenset({"view"})
    list_display = ["sku", "title", "mall", "badge", "reason_list", "hint", "until_local", "computed_local"]
    list_filter = ["eligible", ReasonFilter, "mall", StoreFilter]
    list_select_related = ["listing__seller", "mall"]
    search_fields = ["listing__seller_sku", "listing__title"]
    ordering = ["listing__seller_sku", "mall__name"]
    actions = ["export_csv"]
    fields = ["listing", "mall_name", "badge", "reason_list", "hint", "until_local", "computed_local"]
    readonly_fields = fields

    @admin.display(description="SKU", ordering="listing__seller_sku")
    def sku(self, result: EligibilityResult) -> str:
        return result.listing.seller_sku

    @admin.display(description="Title", ordering="listing__title")
    def title(self, result: EligibilityResult) -> str:
        return result.listing.title

    def get_object(self, request: HttpRequest, object_id: str, from_field=None) -> EligibilityResult | None:
        """A result's page: looked up through the (listing, mall) pair its id packs, the primary
        key on PostgreSQL, where the id has no index of its own (migration 0013)."""
        pair = result_pair(object_id) if from_field is None else None
        if pair is None:
            return super().get_object(request, object_id, from_field)
        listing_id, mall_id = pair
        return self.get_queryset(request).filter(listing_id=listing_id, mall_id=mall_id).first()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Export selected results as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="same-day-eligibility.csv"'
        writer = csv.writer(response)
        writer.writerow(CSV_COLUMNS)
        rows = self.scope(request, queryset).select_related("listing__seller", "mall").order_by("listing", "mall")
        for result in rows.iterator(chunk_size=2000):
            writer.writerow(
                [
                    result.listing.seller.marketplace_seller_id,
                    result.listing.seller_sku,
                    result.listing.title,
                    result.mall.slug,
                    "yes" if result.eligible else "no",
                    " ".join(result.reasons),
                    result.hint,
                    result.eligible_until.astimezone(result.mall.tz).isoformat() if result.eligible_until else "",
                    result.computed_at.astimezone(result.mall.tz).isoformat(),
                ]
            )
        return response


class ListingEligibilityInline(_EligibilityDisplay, ReadOnlyInline):
    """On a listing's page: one line per mall explaining its same-day eligibility."""

    model = EligibilityResult
    seller_path = "listing__seller"
    verbose_name = "same-day eligibility in a mall"
    verbose_name_plural = "same-day eligibility per mall"
    fields = ["mall_name", "badge", "reason_list", "hint", "until_local", "computed_local"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("mall")


def attach_to_listing_admin(site: admin.AdminSite) -> None:
    """Adds the per-mall explanation to the listing page registered by retailers/admin.py, on
    existing listings only: the add page has nothing to explain, and no formset to post."""
    from retailers.models import Listing

    listing_admin = site._registry.get(Listing)
    if listing_admin is None or getattr(listing_admin, "_eligibility_attached", False):
        return
    own_get_inlines = listing_admin.get_inlines

    def get_inlines(request: HttpRequest, obj=None):
        inlines = list(own_get_inlines(request, obj))
        return [*inlines, ListingEligibilityInline] if obj is not None else inlines

    listing_admin.get_inlines = get_inlines
    listing_admin._eligibility_attached = True


attach_to_listing_admin(admin.site)
