"""Store applications in the admin (issue 6 point 2): operators list and filter them, and
approve or reject one through a small confirm page with a reason. The decision goes through
retailers.applications, so the applicant is emailed either way and a decided application
cannot be decided again."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_http_methods

from portal.admin import OperatorAdmin, is_operator
from portal.errors import ActionRefused
from portal.localtime import in_zone
from retailers.applications import REASON_MAX, application_approve, application_reject
from retailers.join_forms import no_control_characters
from retailers.models import ApplicationStatus, Seller, StoreApplication, Weekday

DECISIONS = {
    "approve": {
        "title": "Approve",
        "label": "Note for the applicant (optional)",
        "required": False,
        "help": "The store is created in onboarding, the applicant is invited as its manager and emailed.",
    },
    "reject": {
        "title": "Reject",
        "label": "Reason (the applicant reads it)",
        "required": True,
        "help": "The applicant is emailed this reason.",
    },
}


class _OneLineField(forms.CharField):
    """A textarea's text on one line: line breaks and runs of spaces become one space before the
    field's validators run, so typing Enter is not refused as a control character."""

    def to_python(self, value):
        return " ".join(super().to_python(value).split())


class DecisionForm(forms.Form):
    reason = _OneLineField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": REASON_MAX}),
        validators=[no_control_characters],
        error_messages={
            "required": "Say why the application is rejected; the applicant reads it.",
            "max_length": f"Keep the reason to {REASON_MAX} characters or fewer.",
        },
    )

    existing_seller_confirmed = forms.BooleanField(required=False)

    def __init__(self, *args, decision: str, application: StoreApplication, existing_seller=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = DECISIONS[decision]["label"]
        self.fields["reason"].required = DECISIONS[decision]["required"]
        self.fields["reason"].help_text = DECISIONS[decision]["help"]
        confirmed = self.fields["existing_seller_confirmed"]
        if decision == "approve" and existing_seller is not None:
            # Anyone can type a known seller's id on /join/: the operator checks with that seller.
            confirmed.required = True
            confirmed.label = (
                f"{existing_seller.name} confirmed that {application.contact_name} ({application.email}) "
                "may open this store for them"
            )
            confirmed.error_messages["required"] = (
                f"Check with {existing_seller.name} first, then tick this; or reject the application."
            )
        else:
            del self.fields["existing_seller_confirmed"]


class MarketFilter(admin.SimpleListFilter):
    title = "market"
    parameter_name = "market"

    def lookups(self, request, model_admin):
        from retailers.models import Market

        return [(str(market.pk), market.name) for market in Market.objects.order_by("name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(mall__market_id=int(value))
        return queryset


@admin.register(StoreApplication)
class StoreApplicationAdmin(OperatorAdmin):
    time_zone_path = "mall"
    list_display = [
        "reference_display",
        "store_name",
        "mall",
        "marketplace_seller_id",
        "contact_name",
        "email",
        "estimated_daily_orders",
        "status",
        "submitted_local",
        "reviewed_by",
    ]
    list_display_links = ["reference_display", "store_name"]
    list_filter = ["status", MarketFilter, "mall", "created_at"]
    list_select_related = ["mall", "reviewed_by"]
    search_fields = ["store_name", "seller_name", "marketplace_seller_id", "contact_name", "email", "unit"]
    date_hierarchy = "created_at"
    fields = [
        "status",
        "marketplace_seller_id",
        "seller_name",
        "store_name",
        "mall",
        "unit",
        "contact_name",
        "email",
        "phone",
        "hours_display",
        "categories_display",
        "estimated_daily_orders",
        "submitted_local",
        "reason",
        "reviewed_by",
        "reviewed_local",
        "store",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # applications come from /join/

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # an application is decided, not edited

    @admin.display(description="Application", ordering="pk")
    def reference_display(self, obj: StoreApplication) -> str:
        return obj.reference

    @admin.display(description="Submitted (mall time)", ordering="created_at")
    def submitted_local(self, obj: StoreApplication) -> str:
        return in_zone(obj.created_at, obj.mall.tz)

    @admin.display(description="Reviewed (mall time)", ordering="reviewed_at")
    def reviewed_local(self, obj: StoreApplication) -> str:
        return in_zone(obj.reviewed_at, obj.mall.tz)

    @admin.display(description="Opening hours (mall time)")
    def hours_display(self, obj: StoreApplication) -> str:
        rows = []
        for weekday, span in obj.hour_spans().items():
            text = "Closed" if span is None else f"{span[0]:%H:%M}–{span[1]:%H:%M}"
            if span is not None and span[1] <= span[0]:
                text += " (around the clock)" if span[0] == span[1] else " (closes after midnight)"
            rows.append((Weekday(weekday).label, text))
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {}</li>", rows))

    @admin.display(description="Categories")
    def categories_display(self, obj: StoreApplication) -> str:
        return ", ".join(obj.category_labels())

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                f"<path:object_id>/{decision}/",
                self.admin_site.admin_view(self.decision_view),
                {"decision": decision},
                name="{}_{}_{}".format(*info, decision),
            )
            for decision in DECISIONS
        ] + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "may_decide": False}
        application = self._application(request, object_id, missing_ok=True)
        if application is not None and application.status == ApplicationStatus.APPLIED and is_operator(request.user):
            extra_context["may_decide"] = True
        return super().change_view(request, object_id, form_url, extra_context)

    def _application(self, request: HttpRequest, object_id: str, *, missing_ok: bool = False):
        if not str(object_id).isdigit() or len(str(object_id)) > 18:
            if missing_ok:
                return None
            raise Http404("No such application.")
        application = self.get_queryset(request).select_related("mall", "reviewed_by").filter(pk=int(object_id)).first()
        if application is None and not missing_ok:
            raise Http404("No such application.")
        return application

    def decision_view(self, request: HttpRequest, object_id: str, decision: str) -> HttpResponse:
        return require_http_methods(["GET", "POST"])(self._decide)(request, object_id, decision)

    def _decide(self, request: HttpRequest, object_id: str, decision: str) -> HttpResponse:
        if decision not in DECISIONS:
            raise Http404("No such page.")
        if not is_operator(request.user):
            raise PermissionDenied
        application = self._application(request, object_id)
        change_url = reverse("admin:retailers_storeapplication_change", args=[application.pk])
        existing_seller = None
        if application.status == ApplicationStatus.APPLIED:  # once decided, the seller may be its own
            existing_seller = Seller.objects.filter(marketplace_seller_id=application.marketplace_seller_id).first()
        form = DecisionForm(
            request.POST or None, decision=decision, application=application, existing_seller=existing_seller
        )
        if request.method == "POST" and form.is_valid():
            try:
                if decision == "approve":
                    application_approve(
                        application=application,
                        acting_user=request.user,
                        reason=form.cleaned_data["reason"],
                        existing_seller_confirmed=form.cleaned_data.get("existing_seller_confirmed", False),
                    )
                    application.refresh_from_db()
                    self.message_user(
                        request,
                        f"Application {application.reference} approved: {application.store_name} is onboarding and "
                        f"{application.email} was invited as its manager.",
                        messages.SUCCESS,
                    )
                else:
                    application_reject(
                        application=application, acting_user=request.user, reason=form.cleaned_data["reason"]
                    )
                    self.message_user(
                        request,
                        f"Application {application.reference} rejected; {application.email} was emailed the reason.",
                        messages.SUCCESS,
                    )
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
            return HttpResponseRedirect(change_url)
        if application.status != ApplicationStatus.APPLIED and request.method == "GET":
            self.message_user(
                request,
                f"Application {application.reference} is already {application.get_status_display().lower()}.",
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{DECISIONS[decision]['title']} application {application.reference}",
            "application": application,
            "decision": decision,
            "decision_title": DECISIONS[decision]["title"],
            "form": form,
            "change_url": change_url,
            "existing_seller": existing_seller if decision == "approve" else None,
            "existing_stores": existing_seller.stores.select_related("mall").order_by("name")
            if existing_seller is not None and decision == "approve"
            else [],
        }
        return render(
            request,
            "admin/retailers/storeapplication/decide.html",
            context,
            status=422 if form.errors else 200,
        )
