"""Operators move a store through its lifecycle from its admin page (issue 6 point 4): Go live
(only from onboarding with a complete checklist), Suspend and Reinstate, each through a small
confirm page with a reason. Each calls the service in retailers.services (conditional UPDATE and
a StoreEvent with the operator). The store's events are listed on its admin page (`history`)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_http_methods

from portal.admin import OperatorAdmin, is_operator
from portal.errors import ActionRefused
from portal.localtime import in_zone
from retailers import services
from retailers.models import ProgramAgreement, Store, StoreEvent, StoreStatus
from retailers.selectors import event_title

REASON_MAX = services.REASON_MAX

ACTIONS = {
    "go-live": {
        "title": "Go live",
        "label": "Note (optional)",
        "required": False,
        "help": "The store starts taking same-day orders at once.",
        "allowed": frozenset({StoreStatus.ONBOARDING}),
    },
    "suspend": {
        "title": "Suspend",
        "label": "Why is the store suspended?",
        "required": True,
        "help": "The store's staff see this reason. The store takes no orders until reinstated.",
        "allowed": services.SUSPENDABLE,
    },
    "reinstate": {
        "title": "Reinstate",
        "label": "Why is the store reinstated?",
        "required": True,
        "help": "The store returns to where it was: live, or onboarding.",
        "allowed": frozenset({StoreStatus.SUSPENDED}),
    },
}


class LifecycleReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": "Give a reason; the store's staff will see it.",
            "max_length": f"Keep the reason to {REASON_MAX} characters or fewer.",
        },
    )

    def __init__(self, *args, action: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = ACTIONS[action]["label"]
        self.fields["reason"].required = ACTIONS[action]["required"]
        self.fields["reason"].help_text = ACTIONS[action]["help"]

    def clean_reason(self) -> str:
        return " ".join(self.cleaned_data["reason"].split())


class StoreLifecycleAdminMixin:
    """Mixed into StoreAdmin: the lifecycle pages and the buttons on the store's admin page."""

    change_form_template = "admin/retailers/store/change_form.html"

    @admin.display(description="History (mall time)")
    def history(self, store: Store) -> str:
        """The store's latest events, newest first: who did what, when and why. A read-only
        field rather than an inline, so the change form posts no extra formset."""
        if store.pk is None:
            return "—"
        tz = store.mall.tz
        rows = [
            (
                in_zone(event.at, tz),
                event_title(event.type),
                f"{event.from_status or '—'} → {event.to_status}" if event.to_status else "",
                event.actor_label,
                event.reason or "—",
            )
            for event in StoreEvent.objects.filter(store=store).order_by("-at", "-pk")[:50]
        ]
        if not rows:
            return "No events yet."
        # Scrolls sideways on a phone instead of being cut off by the admin's form row.
        return format_html(
            '<div class="store-history" role="region" aria-label="Store history" tabindex="0">'
            "<table><thead><tr><th>When</th><th>What</th><th>Status</th><th>Who</th><th>Why</th></tr></thead>"
            "<tbody>{}</tbody></table></div>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                f"<path:object_id>/{action}/",
                self.admin_site.admin_view(self.lifecycle_view),
                {"action": action},
                name="{}_{}_{}".format(*info, action.replace("-", "_")),
            )
            for action in ACTIONS
        ] + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        store = self._lifecycle_store(request, object_id, missing_ok=True)
        actions = []
        if store is not None and is_operator(request.user):
            actions = [
                {
                    "url": reverse(f"admin:retailers_store_{action.replace('-', '_')}", args=[store.pk]),
                    "title": spec["title"],
                }
                for action, spec in ACTIONS.items()
                if store.status in spec["allowed"]
            ]
        extra_context = {**(extra_context or {}), "lifecycle_actions": actions}
        return super().change_view(request, object_id, form_url, extra_context)

    def _lifecycle_store(self, request: HttpRequest, object_id: str, *, missing_ok: bool = False) -> Store | None:
        if not str(object_id).isdigit() or len(str(object_id)) > 18:
            if missing_ok:
                return None
            raise Http404("No such store.")
        store = self.get_queryset(request).select_related("mall__market", "seller").filter(pk=int(object_id)).first()
        if store is None and not missing_ok:
            raise Http404("No such store.")
        return store

    def lifecycle_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        return require_http_methods(["GET", "POST"])(self._lifecycle)(request, object_id, action)

    def _lifecycle(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if action not in ACTIONS:
            raise Http404("No such page.")
        if not is_operator(request.user):
            raise PermissionDenied
        store = self._lifecycle_store(request, object_id)
        change_url = reverse("admin:retailers_store_change", args=[store.pk])
        form = LifecycleReasonForm(request.POST or None, action=action)
        checklist = None
        if action == "go-live":
            from retailers.onboarding import checklist_for

            checklist = checklist_for(store)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            try:
                if action == "go-live":
                    services.store_go_live(store=store, acting_user=request.user, note=reason)
                    message = f"{store.name} is live and takes same-day orders."
                elif action == "suspend":
                    services.store_suspend(store=store, acting_user=request.user, reason=reason)
                    message = f"{store.name} is suspended: it takes no orders until reinstated."
                else:
                    services.store_reinstate(store=store, acting_user=request.user, reason=reason)
                    store.refresh_from_db()
                    message = f"{store.name} is reinstated: it is {store.get_status_display().lower()} again."
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
            else:
                self.message_user(request, message, messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{ACTIONS[action]['title']}: {store.name}",
            "store": store,
            "action_title": ACTIONS[action]["title"],
            "allowed": store.status in ACTIONS[action]["allowed"],
            "checklist": checklist,
            "form": form,
            "change_url": change_url,
        }
        return render(request, "admin/retailers/store/lifecycle.html", context, status=422 if form.errors else 200)


@admin.register(ProgramAgreement)
class ProgramAgreementAdmin(OperatorAdmin):
    """Operators publish agreement versions. A version some store accepted is frozen: publish a
    new version instead, and every store accepts that one."""

    list_display = ["version", "published_at", "acceptance_count"]
    search_fields = ["version"]
    ordering = ["-published_at", "-pk"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(accepted=Count("acceptances"))

    @admin.display(description="Stores that accepted it", ordering="accepted")
    def acceptance_count(self, obj: ProgramAgreement) -> int:
        return obj.accepted

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is not None and obj.acceptances.exists():
            return ["version", "text", "published_at"]
        return []

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and obj.acceptances.exists():
            return False
        return super().has_delete_permission(request, obj)
