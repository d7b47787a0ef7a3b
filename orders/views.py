"""Store staff pages: the order board, the order panel and page, its actions, search and store
switching. Every view starts with an access helper (404 outside the person's stores)."""

import functools
from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from drivers.services import HandoffCheck, handoff_confirm_packages, handoff_verify_code
from orders import delivery, services
from orders.access import get_order_for_staff
from orders.board import board_version_store, build_board, iso, local_datetime, poll_is_unchanged
from orders.forms import (
    HandoffCodeForm,
    HandoffConfirmForm,
    PackageCountForm,
    PickedForm,
    ReasonForm,
    SearchForm,
    StoreSwitchForm,
)
from orders.lifecycle import OrderStatus, can_transition
from orders.models import Order
from orders.selectors import order_detail as order_detail_query
from orders.selectors import order_search_for_staff
from portal.errors import ActionRefused
from retailers.access import (
    SESSION_STORE_KEY,
    current_membership,
    get_membership_for_staff,
    shown_membership,
    store_memberships_for,
)
from retailers.models import StoreMembership

S = OrderStatus
ORDER_CHANGED = "orderChanged"
OPEN_ORDER_CHANGED = "openOrderChanged"
_CONFLICT_CODES = {"conflict", "illegal-transition"}
_EVENT_LABELS = {
    "order.received": "Received from the marketplace",
    "order.accepted": "Accepted",
    "order.picking": "Picking started",
    "order.picked_recorded": "Picked quantities recorded",
    "order.ready": "Ready for pickup",
    "order.short": "Item missing reported",
    "order.rejected": "Rejected",
    "order.cancelled": "Cancelled",
    "order.picked_up": "Handed to the driver",
    "order.delivered": "Delivered",
    "order.undeliverable": "Could not be delivered",
    "order.returning": "Returning to the store",
    "order.returned": "Returned to the store",
    "order.delayed": "Delivery delayed",
}


def labels_url(order: Order) -> str | None:
    """The printable labels page (built in retailers/urls.py), when it is installed."""
    try:
        return reverse("store:order-labels", args=[order.pk])
    except NoReverseMatch:
        return None


def _store_context(request: HttpRequest, membership: StoreMembership) -> dict:
    return {
        "current_store": membership.store,
        "store_memberships": list(store_memberships_for(request.user)),
    }


def _int_or_none(value: str | None) -> int | None:
    # isdigit() alone accepts "²", which int() refuses.
    return int(value) if value and value.isascii() and value.isdigit() else None


def _order_context(order: Order, *, bound: dict[str, forms.Form] | None = None, **extra: object) -> dict:
    order = order_detail_query(order)
    store = order.store
    status = order.status
    context = {
        "order": order,
        "lines": list(order.lines.all()),
        "packages": list(order.packages.all()),
        "timeline": [
            {
                "event": event,
                "label": _EVENT_LABELS.get(event.type, event.type),
                "at_local": local_datetime(event.at, store),
                "at_iso": iso(event.at),
            }
            for event in order.events.all()
        ],
        "customer_first_name": (order.customer_name.split() or [""])[0],
        "prep_due_iso": iso(order.prep_due_at),
        "deliver_by_iso": iso(order.deliver_by),
        "prep_due_local": local_datetime(order.prep_due_at, store),
        "deliver_by_local": local_datetime(order.deliver_by, store),
        "time_zone": store.mall.time_zone,
        "is_open": status in {S.RECEIVED, S.ACCEPTED, S.PICKING, S.SHORT, S.READY},
        "can_accept": status == S.RECEIVED,
        "can_start_picking": status == S.ACCEPTED,
        "is_picking": status == S.PICKING,
        # Only with something to send: with nothing picked the choice is to reject.
        "can_send_rest": status == S.SHORT and order.allows_partial and any(line.picked for line in order.lines.all()),
        "can_reject": can_transition(status, S.REJECTED),
        "can_confirm_returned": status == S.RETURNING,
        # Labels are for packages waiting for a driver, not for an order cancelled after packing.
        "labels_url": labels_url(order) if status == S.READY and order.packages.all() else None,
        # Cancelled or rejected after the store had picked or packed it: what to do with the goods.
        "put_back": status in {S.CANCELLED, S.REJECTED}
        and (bool(order.packages.all()) or any(line.picked for line in order.lines.all())),
        "picked_form": PickedForm(order=order),
        "ready_form": PackageCountForm(auto_id="ready-%s"),
        "problem_form": ReasonForm(auto_id="problem-%s"),
        "rest_form": PackageCountForm(auto_id="rest-%s"),
        "reject_form": ReasonForm(auto_id="reject-%s"),
        **extra,
    }
    context.update(bound or {})
    return context


def _order_response(request: HttpRequest, order: Order, *, status: int = 200, **panel: object) -> HttpResponse:
    """The order panel for htmx; otherwise the board page with the panel open."""
    context = _order_context(order, **panel)
    if request.htmx:
        return render(request, "store/order_panel.html", context, status=status)
    membership = current_membership(request)
    store = membership.store
    context |= _store_context(request, membership)
    context |= {"store": store, "board": build_board(store, open_pk=order.pk)}
    return render(request, "store/board.html", context, status=status)


def _reload_when_out_of_reach(view):
    """An htmx request for a store or order the person can no longer reach (taken off the team,
    an order moved to another store while the board was open) reloads the page, which then shows
    what they may see: htmx swaps nothing for a 404, so a poll or a tap would seem to do nothing."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404:
            if request.htmx:
                return HttpResponse(status=404, headers={"HX-Refresh": "true"})
            raise

    return wrapped


@require_GET
@login_required
@_reload_when_out_of_reach
def board(request: HttpRequest) -> HttpResponse:
    since = request.GET.get("since", "")
    # A poll refreshes the store its page shows (its version starts with the store's id), not the
    # session's current store: after a switch in another tab, this tab keeps its own store.
    store_id = board_version_store(since) if request.htmx else None
    if store_id is not None:
        if poll_is_unchanged(user=request.user, store_id=store_id, since=since):
            return HttpResponse(status=204)
        # No longer staff there (or never): 404, and the page reloads on a store the person may see.
        membership = get_membership_for_staff(request, store_id)
    else:
        membership = current_membership(request)
    store = membership.store
    if request.htmx:
        open_pk = _int_or_none(request.GET.get("open"))
        context = {"store": store, "board": build_board(store, open_pk=open_pk)}
        response = render(request, "store/board.html#board", context)
        # The open panel is not swapped by the poll (it may hold what someone is typing): when its
        # order's status changed elsewhere (a marketplace cancel, a colleague), it refreshes itself.
        shown_status = request.GET.get("open_status")
        if open_pk is not None and shown_status:
            current = Order.objects.filter(pk=open_pk, store=store).values_list("status", flat=True).first()
            if current is not None and current != shown_status:
                trigger_client_event(response, OPEN_ORDER_CHANGED, {"order": open_pk, "status": current})
        return response
    context = {"store": store, "board": build_board(store), **_store_context(request, membership)}
    return render(request, "store/board.html", context)


@require_GET
@login_required
@_reload_when_out_of_reach
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    if request.htmx and "changed" in request.GET:
        # The open panel refreshing itself after the board saw its order change elsewhere.
        status = OrderStatus(order.status).label.lower()
        return _order_response(
            request, order, action_notice=f"Order {order.number} was changed elsewhere: it is now {status}."
        )
    return _order_response(request, order)


def _act(
    request: HttpRequest,
    order: Order,
    *,
    run: Callable[[], object],
    done: str,
    form: forms.Form | None = None,
    form_key: str = "",
    picked_form: PickedForm | None = None,
    next_url: str | None = None,
) -> HttpResponse:
    """Validates `form` (and `picked_form`, the picked quantities sent along), runs the service
    and answers: the refreshed panel plus an `orderChanged` event for htmx, a redirect (PRG)
    otherwise. A refusal is shown in the panel with 409 (someone else changed it) or 422 (not
    possible as asked), the typed values kept."""
    bound = {form_key: form} if form is not None else {}
    if picked_form is not None:
        bound["picked_form"] = picked_form
    if any(not bound_form.is_valid() for bound_form in bound.values()):
        return _order_response(request, order, status=422, bound=bound, action_error="Check the form below.")
    try:
        run()
    except ActionRefused as refused:
        order.refresh_from_db()
        status = 409 if refused.code in _CONFLICT_CODES else 422
        response = _order_response(request, order, status=status, bound=bound, action_error=refused.message)
        if request.htmx and status == 409:
            # Changed by someone else: the board catches up now, not at its next poll.
            trigger_client_event(response, ORDER_CHANGED, {"order": order.pk})
        return response
    if request.htmx:
        response = _order_response(request, order, action_notice=done)
        trigger_client_event(response, ORDER_CHANGED, {"order": order.pk})
        return response
    messages.success(request, done)
    return redirect(next_url or reverse("store:order-detail", args=[order.pk]))


@require_POST
@login_required
@_reload_when_out_of_reach
def order_accept(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    return _act(
        request,
        order,
        run=lambda: services.order_accept(order=order, acting_user=request.user),
        done=f"Order {order.number} accepted.",
    )


@require_POST
@login_required
@_reload_when_out_of_reach
def order_start_picking(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    return _act(
        request,
        order,
        run=lambda: services.order_start_picking(order=order, acting_user=request.user),
        done=f"Picking started for order {order.number}.",
    )


@require_POST
@login_required
@_reload_when_out_of_reach
def order_record_picked(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    form = PickedForm(request.POST, order=order)
    return _act(
        request,
        order,
        form=form,
        form_key="picked_form",
        run=lambda: services.order_record_picked(order=order, acting_user=request.user, picked=form.picked()),
        done="Picked quantities saved.",
    )


def _sent_picked_form(request: HttpRequest, order: Order) -> PickedForm | None:
    """The picked quantities the panel sends with Mark ready and Report problem (hx-include of
    the picked table), so what was typed there counts even when it was not saved first."""
    if not any(name.startswith("line_") for name in request.POST):
        return None
    return PickedForm(request.POST, order=order)


@require_POST
@login_required
@_reload_when_out_of_reach
def order_mark_ready(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    form = PackageCountForm(request.POST, auto_id="ready-%s")
    picked_form = _sent_picked_form(request, order)
    return _act(
        request,
        order,
        form=form,
        form_key="ready_form",
        picked_form=picked_form,
        run=lambda: services.order_mark_ready(
            order=order,
            acting_user=request.user,
            package_count=form.cleaned_data["package_count"],
            picked=picked_form.picked() if picked_form is not None else None,
        ),
        done=f"Order {order.number} is ready for pickup. Print its labels.",
        next_url=labels_url(order),
    )


@require_POST
@login_required
@_reload_when_out_of_reach
def order_report_problem(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    form = ReasonForm(request.POST, auto_id="problem-%s")
    picked_form = _sent_picked_form(request, order)
    return _act(
        request,
        order,
        form=form,
        form_key="problem_form",
        picked_form=picked_form,
        run=lambda: services.order_report_short(
            order=order,
            acting_user=request.user,
            reason=form.cleaned_data["reason"],
            picked=picked_form.picked() if picked_form is not None else None,
        ),
        done=f"Problem reported on order {order.number}: send the rest or reject it.",
    )


@require_POST
@login_required
@_reload_when_out_of_reach
def order_send_rest(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    form = PackageCountForm(request.POST, auto_id="rest-%s")
    return _act(
        request,
        order,
        form=form,
        form_key="rest_form",
        run=lambda: services.order_mark_ready(
            order=order, acting_user=request.user, package_count=form.cleaned_data["package_count"]
        ),
        done=f"The rest of order {order.number} is ready for pickup. Print its labels.",
        next_url=labels_url(order),
    )


@require_POST
@login_required
@_reload_when_out_of_reach
def order_reject(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    form = ReasonForm(request.POST, auto_id="reject-%s")
    return _act(
        request,
        order,
        form=form,
        form_key="reject_form",
        run=lambda: services.order_reject(order=order, acting_user=request.user, reason=form.cleaned_data["reason"]),
        done=f"Order {order.number} rejected.",
    )


@require_POST
@login_required
@_reload_when_out_of_reach
def order_confirm_returned(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    return _act(
        request,
        order,
        run=lambda: delivery.order_confirm_returned(order=order, acting_user=request.user),
        done=f"Return of order {order.number} confirmed. Check the items and restock what can be sold.",
    )


@require_GET
@login_required
def search(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    form = SearchForm(request.GET or None)
    results: list[Order] = []
    if form.is_valid():
        results = list(order_search_for_staff(request.user, form.cleaned_data["q"]))
        if len(results) == 1:
            url = reverse("store:order-detail", args=[results[0].pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    for order in results:  # when each was placed, in its mall's time
        order.placed_local = local_datetime(order.placed_at, order.store)
    context = {"form": form, "results": results, "searched": form.is_bound}
    if request.htmx:
        return render(request, "store/search.html#search-results", context)
    context |= _store_context(request, membership)
    return render(request, "store/search.html", context)


@require_POST
@login_required
def switch_store(request: HttpRequest) -> HttpResponse:
    form = StoreSwitchForm(request.POST)
    store_id = form.cleaned_data["store"] if form.is_valid() else 0
    membership = get_membership_for_staff(request, store_id)
    request.session[SESSION_STORE_KEY] = membership.store_id
    messages.success(request, f"You are now working at {membership.store.name}.")
    return redirect("store:board")


# Handoff at the store: staff check the driver's pickup code, then confirm each package. -----------

_PACKAGE_REFUSALS = {"missing-package", "wrong-package"}


def _handoff_response(
    request: HttpRequest, membership: StoreMembership, context: dict, *, status: int = 200
) -> HttpResponse:
    """The handoff panel for htmx; otherwise the board page with the panel open beside it."""
    store = membership.store
    context = {"store": store, "handoff_step": "packages" if "check" in context else "code", **context}
    if request.htmx:
        return render(request, "store/handoff_panel.html", context, status=status)
    context |= {"board": build_board(store), **_store_context(request, membership)}
    return render(request, "store/board.html", context, status=status)


def _code_step(
    request: HttpRequest, membership: StoreMembership, *, code: str = "", error: str = "", status: int = 200
) -> HttpResponse:
    form = HandoffCodeForm({"code": code}) if code or error else HandoffCodeForm()
    if error and form.is_valid():
        form.add_error("code", error)
    return _handoff_response(request, membership, {"code_form": form}, status=status)


def _packages_step(
    request: HttpRequest,
    membership: StoreMembership,
    check: HandoffCheck,
    *,
    code: str,
    ticked: list[str] = (),
    scanned: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "check": check,
        "code": code,
        "driver_first_name": check.driver.user.first_name or str(check.driver),
        "ticked": set(ticked),
        "scanned": scanned,
        "handoff_error": error,
    }
    return _handoff_response(request, membership, context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def handoff(request: HttpRequest) -> HttpResponse:
    """Step 1: the driver's pickup code (scanned or typed). A POST checks it and lists the
    packages this driver collects at this store."""
    membership = shown_membership(request)
    if request.method == "GET":
        return _code_step(request, membership)
    form = HandoffCodeForm(request.POST)
    if not form.is_valid():
        return _handoff_response(request, membership, {"code_form": form}, status=422)
    code = form.cleaned_data["code"]
    try:
        check = handoff_verify_code(store=membership.store, code=code)
    except ActionRefused as refused:
        return _code_step(request, membership, code=code, error=refused.message, status=422)
    return _packages_step(request, membership, check, code=code)


@require_POST
@login_required
def handoff_confirm(request: HttpRequest) -> HttpResponse:
    """Step 2: every package of this store's part of the route confirmed; the orders are picked up."""
    membership = shown_membership(request)
    store = membership.store
    form = HandoffConfirmForm(request.POST)
    if not form.is_valid() and "code" in form.errors:
        return _handoff_response(request, membership, {"code_form": form}, status=422)
    code = form.cleaned_data["code"]
    ticked = form.cleaned_data.get("labels", [])
    try:
        if not form.is_valid():
            raise ActionRefused(" ".join(form.errors["scanned"]), code="validation")
        handoff_record = handoff_confirm_packages(
            store=store, code=code, labels=form.given_labels(), acting_user=request.user
        )
    except ActionRefused as refused:
        if refused.code not in _PACKAGE_REFUSALS | {"validation"}:
            return _code_step(request, membership, code=code, error=refused.message, status=422)
        try:
            check = handoff_verify_code(store=store, code=code)
        except ActionRefused as gone:
            return _code_step(request, membership, code=code, error=gone.message, status=422)
        expected = set(check.labels)
        given = set(form.given_labels()) if form.is_valid() else set(ticked)
        stray = " ".join(sorted(given - expected))
        return _packages_step(
            request,
            membership,
            check,
            code=code,
            ticked=sorted(given & expected),
            scanned=stray,
            error=refused.message,
            status=422,
        )
    driver = handoff_record.driver
    count = len(handoff_record.labels)
    done = (
        f"Handed {count} package{'' if count == 1 else 's'} to {driver.user.first_name or driver}: "
        f"{', '.join(handoff_record.labels)}."
    )
    if request.htmx:
        response = _handoff_response(request, membership, {"code_form": HandoffCodeForm(), "handoff_notice": done})
        trigger_client_event(response, ORDER_CHANGED, {"handoff": handoff_record.pk})
        return response
    messages.success(request, done)
    return redirect("store:handoff")
