"""Operator admin for drivers, routes and offers. Only program operators (superusers) see any of
it; seller managers, who are staff too, do not. Status changes go through drivers.services."""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from drivers import selectors, services
from drivers.lifecycle import DRIVER_TRANSITIONS, DriverStatus
from drivers.models import (
    Driver,
    DriverDocument,
    DriverEvent,
    DriverShift,
    Handoff,
    MarketPaySettings,
    Offer,
    OfferRecipient,
    Route,
    RouteStatus,
    RouteStop,
    Vehicle,
)
from portal.admin import MallrunModelAdmin, is_operator
from portal.errors import ActionRefused
from portal.localtime import in_zone


class OperatorOnly:
    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request.user)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class HistoryOnly(OperatorOnly):
    """Rows written by services: shown, never edited here."""

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class VehicleInline(OperatorOnly, admin.StackedInline):
    model = Vehicle
    can_delete = False


class DocumentInline(OperatorOnly, admin.TabularInline):
    model = DriverDocument
    extra = 0
    fields = ["kind", "number", "expires_on", "expiry_reminded_at", "expiry_notified_at"]
    readonly_fields = ["expiry_reminded_at", "expiry_notified_at"]


class DriverEventInline(HistoryOnly, admin.TabularInline):
    model = DriverEvent
    extra = 0
    fields = ["at", "type", "from_status", "to_status", "actor_label", "reason"]
    readonly_fields = fields
    ordering = ["-at"]


SHIFTS_SHOWN_BACK = dt.timedelta(days=14)


class DriverShiftInline(HistoryOnly, admin.TabularInline):
    """The driver's shifts, scheduled by the driver on their page: the ones not ended and those of
    the last two weeks (all of them are in the Driver shifts list)."""

    model = DriverShift
    extra = 0
    fields = ["local_time", "market", "starts_at", "ends_at", "created_at"]
    readonly_fields = fields
    ordering = ["-starts_at"]
    verbose_name_plural = "Shifts (not ended, and the last 14 days)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        since = timezone.now() - SHIFTS_SHOWN_BACK
        return super().get_queryset(request).filter(ends_at__gt=since).select_related("market")

    @admin.display(description="Local time")
    def local_time(self, obj: DriverShift) -> str:
        return obj.local_label()


class StatusForm(forms.Form):
    ACTIONS = [
        ("screening", "Start screening"),
        ("approve", "Approve (or resume): active"),
        ("pause", "Pause: inactive"),
        ("deactivate", "Deactivate"),
    ]
    # Where each action takes the driver (drivers.lifecycle): only those open from their status are offered.
    TARGETS = {
        "screening": DriverStatus.SCREENING,
        "approve": DriverStatus.ACTIVE,
        "pause": DriverStatus.INACTIVE,
        "deactivate": DriverStatus.DEACTIVATED,
    }
    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect)
    reason = forms.CharField(max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, status: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        allowed = DRIVER_TRANSITIONS[status]
        self.fields["action"].choices = [
            (value, label) for value, label in self.ACTIONS if self.TARGETS[value] in allowed
        ]
        self.fields["action"].error_messages["invalid_choice"] = (
            f"That change is not open to a driver who is {DriverStatus(status).label.lower()}."
        )

    def clean(self):
        cleaned = super().clean()
        # A reason refused by the field itself (too long) already has its message.
        given = "reason" in self.errors or cleaned.get("reason", "").strip()
        if cleaned.get("action") in {"pause", "deactivate"} and not given:
            self.add_error("reason", "Give a reason: the driver sees it.")
        return cleaned


class DocumentsFilter(admin.SimpleListFilter):
    """Drivers by the state of their required documents now, for renewing them in time."""

    title = "documents"
    parameter_name = "documents"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [
            ("lapsed", "Expired or missing"),
            ("expiring", f"Run out within {selectors.DOCUMENT_WARNING.days} days"),
            ("valid", f"Valid beyond {selectors.DOCUMENT_WARNING.days} days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        valid = selectors.drivers_with_valid_documents(now=now).values("pk")
        soon = now + selectors.DOCUMENT_WARNING  # every document kind is required
        if self.value() == "lapsed":
            return queryset.exclude(pk__in=valid)
        if self.value() == "expiring":
            return queryset.filter(pk__in=valid).filter(documents__valid_until__lte=soon).distinct()
        if self.value() == "valid":
            return queryset.filter(pk__in=valid).exclude(documents__valid_until__lte=soon)
        return queryset


@admin.register(Driver)
class DriverAdmin(OperatorOnly, MallrunModelAdmin):
    time_zone_path = "home_market"
    list_display = [
        "name_and_login",
        "status",
        "home_market",
        "documents",
        "is_online",
        "online_market",
        "location_updated_at",
    ]
    list_filter = ["status", DocumentsFilter, "is_online", "home_market"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "phone"]
    list_select_related = ["user", "home_market", "online_market"]
    inlines = [VehicleInline, DocumentInline, DriverShiftInline, DriverEventInline]

    @admin.display(description="Driver", ordering="user__first_name")
    def name_and_login(self, driver: Driver) -> str:
        # Two drivers may share a name: the login tells them apart.
        return f"{driver} ({driver.user.get_username()})"

    readonly_fields = [
        "status",
        "status_reason",
        "status_changed_at",
        "is_online",
        "online_market",
        "latitude",
        "longitude",
        "location_updated_at",
        "standing",
        "status_link",
    ]
    fields = ["user", "home_market", "phone", "status_link", *readonly_fields[:-1]]
    actions = ["approve_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [*self.readonly_fields, "user"] if obj else self.readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("documents")

    @admin.display(description="Documents")
    def documents(self, obj: Driver) -> str:
        """The required document that ends first, and its state (the home market's dates)."""
        statuses = selectors.document_statuses(driver=obj, now=timezone.now())
        order = {"missing": 0, "expired": 1, "expiring": 2, "valid": 3}
        first = min(statuses, key=lambda status: (order[status.state], status.expires_on or dt.date.min))
        label = first.label.lower()
        if first.state == "missing":
            return f"no {label} on file"
        day = date_format(first.expires_on, "M j, Y")
        if first.state == "expired":
            return f"{label} expired {day}"
        if first.state == "expiring":
            return f"{label} runs out {day}"
        return f"valid through {day}"

    def save_model(self, request: HttpRequest, obj: Driver, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "home_market" in form.changed_data:
            # The documents already on file now end their expiry date in the new market's zone
            # (the inline's rows, saved next, compute theirs themselves).
            services.documents_refresh_valid_until(driver_ids=[obj.pk])

    @admin.display(description="Standing (last 30 days)")
    def standing(self, obj: Driver) -> str:
        if obj.pk is None:
            return "—"
        figures = selectors.driver_standing(driver=obj, now=timezone.now())
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li>{}: <a href="{}">{} of {}{}</a></li>',
                (
                    (
                        figure.label,
                        reverse(f"admin:drivers_{figure.model}_changelist") + "?" + urlencode(figure.params),
                        figure.numerator,
                        figure.denominator,
                        f" ({figure.percent}%)" if figure.percent is not None else "",
                    )
                    for figure in figures
                ),
            ),
        )

    @admin.display(description="Status")
    def status_link(self, obj: Driver) -> str:
        if obj.pk is None:
            return "—"
        return format_html(
            '{} <a class="button" href="{}">Change status</a>',
            obj.get_status_display(),
            reverse("admin:drivers_driver_status", args=[obj.pk]),
        )

    def get_urls(self):
        return [
            path("<int:pk>/status/", self.admin_site.admin_view(self.status_view), name="drivers_driver_status"),
            *super().get_urls(),
        ]

    def status_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        driver = get_object_or_404(Driver.objects.select_related("user"), pk=pk)
        if not self.has_change_permission(request, driver):
            return HttpResponseRedirect(reverse("admin:index"))
        form = StatusForm(request.POST or None, status=driver.status)
        if request.method == "POST" and form.is_valid():
            action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
            run = {
                "screening": lambda: services.driver_start_screening(driver=driver, acting_user=request.user),
                "approve": lambda: services.driver_approve(driver=driver, acting_user=request.user),
                "pause": lambda: services.driver_pause(driver=driver, acting_user=request.user, reason=reason),
                "deactivate": lambda: services.driver_deactivate(
                    driver=driver, acting_user=request.user, reason=reason
                ),
            }[action]
            try:
                run()
            except ActionRefused as refused:
                form.add_error(None, refused.message)
            else:
                self.message_user(request, f"{driver} is now {DriverStatus(driver.status).label.lower()}.")
                return HttpResponseRedirect(reverse("admin:drivers_driver_change", args=[driver.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change status of {driver}",
            "driver": driver,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "driver/admin_status.html", context, status=422 if form.errors else 200)

    @admin.action(description="Approve selected drivers (screening → active)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Driver]) -> None:
        for driver in queryset:
            try:
                services.driver_approve(driver=driver, acting_user=request.user)
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
            else:
                self.message_user(request, f"{driver} approved.")


class RecipientInline(HistoryOnly, admin.TabularInline):
    """Everyone the offer considered: offered (when, which wave, the answer) or why not."""

    model = OfferRecipient
    extra = 0
    fields = ["driver", "rank", "distance_miles", "wave", "offered_at", "answer", "answered_at", "not_offered_reason"]
    readonly_fields = fields
    ordering = ["offered_at", "rank", "pk"]


@admin.register(Offer)
class OfferAdmin(HistoryOnly, MallrunModelAdmin):
    time_zone_path = "route__mall"
    list_display = ["__str__", "route", "status", "attempt", "pay", "wave", "opened_local", "due_local", "driver"]
    list_filter = ["status", "route__mall"]
    list_select_related = ["route__mall", "driver__user"]
    inlines = [RecipientInline]

    @admin.display(description="Opened (mall time)", ordering="opened_at")
    def opened_local(self, obj: Offer) -> str:
        return in_zone(obj.opened_at, obj.route.mall.tz, "D H:i T")

    @admin.display(description="Answer by (mall time)", ordering="due_at")
    def due_local(self, obj: Offer) -> str:
        return in_zone(obj.due_at, obj.route.mall.tz, "D H:i:s T")

    @admin.display(description="Pay")
    def pay(self, obj: Offer) -> str:
        return f"${obj.pay_cents / 100:.2f}"


class StopInline(HistoryOnly, admin.TabularInline):
    model = RouteStop
    extra = 0
    fields = [
        "sequence",
        "order",
        "store",
        "status",
        "is_current",
        "planned_packages",
        "ready_expected_at",
        "eta",
        "picked_up_at",
        "finished_at",
        "problem_reason",
    ]
    readonly_fields = fields


class OfferInline(HistoryOnly, admin.TabularInline):
    model = Offer
    extra = 0
    fields = ["status", "attempt", "pay_cents", "wave", "opened_at", "driver", "close_reason"]
    readonly_fields = fields
    show_change_link = True


class AssignForm(forms.Form):
    """The driver an operator gives a route to: one who could take it now (online in the
    route's market, active, documents valid, on no route)."""

    driver = forms.ModelChoiceField(
        queryset=Driver.objects.none(),
        empty_label="Choose a driver",
        error_messages={
            "required": "Choose the driver who takes the route.",
            "invalid_choice": "That driver can no longer take a route: choose another.",
        },
    )

    def __init__(self, *args, route: Route, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        market = route.mall.market
        field = self.fields["driver"]
        field.queryset = (
            selectors.drivers_free_in_market(market_id=market.pk, now=timezone.now())
            .exclude(pk=route.driver_id or 0)
            .select_related("user")
            .order_by("user__first_name", "user__last_name", "pk")
        )
        field.help_text = (
            f"Drivers online in {market.name} who could take it now (active, documents valid, on no other "
            "route). Someone missing: ask them to go online in the driver app, then reload this page."
        )


@admin.register(Route)
class RouteAdmin(HistoryOnly, MallrunModelAdmin):
    time_zone_path = "mall"
    list_display = [
        "__str__",
        "mall",
        "status",
        "driver",
        "packages",
        "estimated_miles",
        "depart_local",
        "replans",
        "split_from",
        "alert",
    ]
    list_filter = ["status", "mall"]
    list_select_related = ["mall", "driver__user", "split_from"]
    inlines = [StopInline, OfferInline]
    actions = ["reoffer_selected"]
    readonly_fields = ["give_to_a_driver"]

    @admin.display(description="Give to a driver")
    def give_to_a_driver(self, obj: Route) -> str:
        if obj.pk is None or obj.status not in services.ASSIGNABLE:
            return "—"
        return format_html(
            '<a class="button" href="{}">Give to a driver…</a>', reverse("admin:drivers_route_assign", args=[obj.pk])
        )

    def get_urls(self):
        return [
            path("<int:pk>/assign/", self.admin_site.admin_view(self.assign_view), name="drivers_route_assign"),
            *super().get_urls(),
        ]

    def assign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Gives the route to the driver chosen (services.route_assign); a refusal is shown on
        the form (422), nothing changed."""
        if not is_operator(request.user):
            return HttpResponseRedirect(reverse("admin:index"))
        route = get_object_or_404(Route.objects.select_related("mall__market", "driver__user"), pk=pk)
        change_url = reverse("admin:drivers_route_change", args=[route.pk])
        form = AssignForm(request.POST or None, route=route)
        if request.method == "POST" and form.is_valid():
            driver = form.cleaned_data["driver"]
            try:
                offer = services.route_assign(route=route, driver=driver, acting_user=request.user)
            except ActionRefused as refused:
                form.add_error(None, refused.message)
            else:
                self.message_user(
                    request, f"{route} is {driver}'s now: their pickup code is {offer.pickup_code}.", messages.SUCCESS
                )
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Give {route} to a driver",
            "route": route,
            "assignable": route.status in services.ASSIGNABLE,
            "form": form,
            "change_url": change_url,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "driver/admin_assign.html", context, status=422 if form.errors else 200)

    @admin.display(description="Leaves the mall (mall time)", ordering="depart_at")
    def depart_local(self, obj: Route) -> str:
        return in_zone(obj.depart_at, obj.mall.tz, "D H:i T")

    @admin.action(description="Re-offer selected routes that wait for an operator")
    def reoffer_selected(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        for route in queryset.filter(status=RouteStatus.AT_RISK):
            try:
                services.route_reoffer(route=route, acting_user=request.user)
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
            else:
                self.message_user(request, f"{route} offered again.")


@admin.register(OfferRecipient)
class OfferRecipientAdmin(HistoryOnly, MallrunModelAdmin):
    time_zone_path = "offer__route__mall"
    list_display = ["offer", "driver", "wave", "offered_at", "answer", "answered_at", "not_offered_reason"]
    list_filter = ["answer", "driver"]
    list_select_related = ["offer", "driver__user"]


@admin.register(Handoff)
class HandoffAdmin(HistoryOnly, MallrunModelAdmin):
    time_zone_path = "route__mall"
    list_display = ["route", "store", "driver", "staff_label", "at", "checked_in_at", "wait_pay_cents"]
    list_filter = ["driver", "store"]
    list_select_related = ["route", "store", "driver__user"]


@admin.register(RouteStop)
class RouteStopAdmin(HistoryOnly, MallrunModelAdmin):
    time_zone_path = "route__mall"
    list_display = ["route", "sequence", "order", "store", "status", "finished_at", "problem_reason"]
    list_filter = ["status", "route__driver"]
    list_select_related = ["route", "order", "store"]


@admin.register(MarketPaySettings)
class MarketPaySettingsAdmin(OperatorOnly, MallrunModelAdmin):
    list_display = ["market", "base_cents", "per_stop_cents", "per_mile_cents", "hourly_floor_cents"]


class ShiftTimeFilter(admin.SimpleListFilter):
    title = "time"
    parameter_name = "when"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [("now", "Under way now"), ("upcoming", "Not started"), ("ended", "Ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(starts_at__lte=now, ends_at__gt=now)
        if self.value() == "upcoming":
            return queryset.filter(starts_at__gt=now)
        if self.value() == "ended":
            return queryset.filter(ends_at__lte=now)
        return queryset


@admin.register(DriverShift)
class DriverShiftAdmin(HistoryOnly, MallrunModelAdmin):
    time_zone_path = "market"
    list_display = ["driver", "market", "local_time", "starts_at", "ends_at", "created_at"]
    list_filter = [ShiftTimeFilter, "market"]
    list_select_related = ["driver__user", "market"]
    search_fields = ["driver__user__username", "driver__user__first_name", "driver__user__last_name"]
    date_hierarchy = "starts_at"
    ordering = ["-starts_at"]
    fields = ["driver", "market", "local_time", "starts_at", "ends_at", "created_at"]
    readonly_fields = fields

    @admin.display(description="Local time")
    def local_time(self, obj: DriverShift) -> str:
        return obj.local_label()
