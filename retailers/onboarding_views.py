"""/store/onboarding: the store manager's checklist before go-live, the program agreement, and the
training order. Associates see the checklist read-only. The forms live here because only these
views use them."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from orders.lifecycle import TERMINAL
from orders.models import Order
from portal.errors import ActionRefused
from retailers import onboarding
from retailers.access import current_membership, require_manager, shown_membership
from retailers.models import ProgramAgreement, StoreMembership
from retailers.selectors import store_event_list_for_staff

TEMPLATE = "store/onboarding.html"


class AgreementAcceptForm(forms.Form):
    agreement = forms.IntegerField(
        widget=forms.HiddenInput, error_messages={"invalid": "Reload the page and try again."}
    )
    accept = forms.BooleanField(
        label="I have read the program agreement and accept it on behalf of the store.",
        error_messages={"required": "Tick the box to accept the agreement."},
    )


def _latest_training_order(membership: StoreMembership) -> Order | None:
    return (
        Order.objects.filter(store=membership.store, is_training=True)
        .prefetch_related("packages")
        .order_by("-created_at", "-pk")
        .first()
    )


def _render(
    request: HttpRequest, membership: StoreMembership, *, agreement_form: AgreementAcceptForm | None = None
) -> HttpResponse:
    store = membership.store
    store.refresh_from_db()
    agreement = ProgramAgreement.current()
    training = _latest_training_order(membership)
    route, offer = onboarding.training_route(training) if training else (None, None)
    checklist = onboarding.checklist_for(store)
    context = {
        "membership": membership,
        "store": store,
        "can_edit": membership.is_manager,
        "checklist": checklist,
        "agreement": agreement,
        "acceptance": onboarding.current_acceptance(store, agreement),
        "agreement_form": agreement_form
        or AgreementAcceptForm(initial={"agreement": agreement.pk if agreement else 0}),
        "training": training,
        "training_open": training is not None and training.status not in TERMINAL,
        "training_offer": offer,
        "events": store_event_list_for_staff(store=store, limit=10),
        "mall_tz": store.mall.tz,
    }
    template = f"{TEMPLATE}#onboarding" if request.htmx else TEMPLATE
    return render(request, template, context)


def _after_change(request: HttpRequest, membership: StoreMembership, anchor: str) -> HttpResponse:
    # htmx swaps the refreshed page region in place; without JavaScript, post/redirect/get.
    if request.htmx:
        return _render(request, membership)
    return redirect(f"{reverse('store:onboarding')}#{anchor}")


@require_GET
@login_required
def onboarding_page(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    return _render(request, membership)


@require_POST
@login_required
def agreement_accept(request: HttpRequest) -> HttpResponse:
    membership = shown_membership(request)
    require_manager(request, membership)
    form = AgreementAcceptForm(request.POST)
    if not form.is_valid():
        return _render(request, membership, agreement_form=form)
    agreement = ProgramAgreement.objects.filter(pk=form.cleaned_data["agreement"]).first()
    try:
        if agreement is None:
            raise ActionRefused("That agreement does not exist: reload the page.", code="validation")
        acceptance = onboarding.agreement_accept(store=membership.store, agreement=agreement, acting_user=request.user)
    except ActionRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, f"Program agreement version {acceptance.agreement.version} accepted.")
    return _after_change(request, membership, "agreement-heading")


@require_POST
@login_required
def training_order_create(request: HttpRequest) -> HttpResponse:
    membership = shown_membership(request)
    require_manager(request, membership)
    try:
        order = onboarding.training_order_create(store=membership.store, acting_user=request.user)
    except ActionRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(
            request,
            f"Training order {order.number} is on the board under New: accept it, pick it, mark it ready and "
            "print its labels.",
        )
    return _after_change(request, membership, "training-heading")


@require_POST
@login_required
def training_call_driver(request: HttpRequest) -> HttpResponse:
    membership = shown_membership(request)
    require_manager(request, membership)
    order = onboarding.open_training_order(membership.store)
    try:
        if order is None:
            raise ActionRefused("There is no training order under way: start one first.", code="validation")
        offer = onboarding.training_order_call_driver(order=order, acting_user=request.user)
    except ActionRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(
            request,
            f"The demo driver is at the counter with pickup code {offer.pickup_code}: hand the packages over.",
        )
    return _after_change(request, membership, "training-heading")
