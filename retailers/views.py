"""The store's own pages under /store/: settings, and pausing or resuming same-day."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portal.errors import ActionRefused
from retailers import services
from retailers.access import require_manager, shown_membership
from retailers.forms import StorePauseForm, StoreSettingsForm
from retailers.models import StoreMembership
from retailers.selectors import store_event_list_for_staff, store_hours_list

SETTINGS_TEMPLATE = "store/settings.html"


def _render_settings(
    request: HttpRequest,
    membership: StoreMembership,
    *,
    form: StoreSettingsForm | None = None,
    pause_form: StorePauseForm | None = None,
) -> HttpResponse:
    store = membership.store
    if form is None and membership.is_manager:
        form = StoreSettingsForm(initial=StoreSettingsForm.initial_for(store))
    context = {
        "membership": membership,
        "store": store,
        "can_edit": membership.is_manager,
        "form": form,
        "pause_form": pause_form or StorePauseForm(),
        "hours": store_hours_list(store=store),
        "events": store_event_list_for_staff(store=store),
        "mall_tz": store.mall.tz,
    }
    template = f"{SETTINGS_TEMPLATE}#store-settings" if request.htmx else SETTINGS_TEMPLATE
    return render(request, template, context)


def _after_change(request: HttpRequest, membership: StoreMembership) -> HttpResponse:
    # htmx swaps the refreshed region in place; without JavaScript, post/redirect/get.
    if request.htmx:
        membership.store.refresh_from_db()
        return _render_settings(request, membership)
    return redirect("store:store-settings")


@require_http_methods(["GET", "POST"])
@login_required
def store_settings(request: HttpRequest) -> HttpResponse:
    membership = shown_membership(request)
    if request.method == "GET":
        return _render_settings(request, membership)
    require_manager(request, membership)
    form = StoreSettingsForm(request.POST)
    if not form.is_valid():
        return _render_settings(request, membership, form=form)
    try:
        services.store_update_settings(
            store=membership.store,
            acting_user=request.user,
            same_day_cutoff=form.cleaned_data["same_day_cutoff"],
            prep_sla_minutes=form.cleaned_data["prep_sla_minutes"],
            hourly_capacity=form.cleaned_data["hourly_capacity"],
            pickup_instructions=form.cleaned_data["pickup_instructions"],
            hours=form.hours(),
            seen_version=form.cleaned_data["version"] or None,
        )
    except ActionRefused as refused:
        messages.error(request, refused.message)
        membership.store.refresh_from_db()
        return _render_settings(request, membership)
    messages.success(request, "Settings saved.")
    return _after_change(request, membership)


@require_POST
@login_required
def store_pause(request: HttpRequest) -> HttpResponse:
    membership = shown_membership(request)
    require_manager(request, membership)
    form = StorePauseForm(request.POST)
    if not form.is_valid():
        return _render_settings(request, membership, pause_form=form)
    try:
        services.store_pause(store=membership.store, acting_user=request.user, reason=form.cleaned_data["reason"])
    except ActionRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, "Same-day is paused. Everyone on the board sees why.")
    return _after_change(request, membership)


@require_POST
@login_required
def store_resume(request: HttpRequest) -> HttpResponse:
    membership = shown_membership(request)
    require_manager(request, membership)
    try:
        services.store_resume(store=membership.store, acting_user=request.user)
    except ActionRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, "Same-day is back on.")
    return _after_change(request, membership)
