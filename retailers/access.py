"""Tenancy checks for store staff. Every store view starts with one of these: anything outside
the user's own stores answers 404 (it does not exist for them), a write by a read-only role
answers 403. Every refusal is logged."""

from collections.abc import Sequence

from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from portal.security import log_refused
from retailers.models import StoreMembership

SESSION_STORE_KEY = "current_store_id"


def store_memberships_for(user) -> QuerySet[StoreMembership]:
    return (
        StoreMembership.objects.filter(user=user, is_active=True)
        .select_related("store__mall", "store__seller")
        .order_by("store__name")
    )


def get_membership_for_staff(request: HttpRequest, store_id: int) -> StoreMembership:
    membership = store_memberships_for(request.user).filter(store_id=store_id).first()
    if membership is None:
        log_refused(request, f"store:{store_id}", 404)
        raise Http404("No such store.")
    return membership


def choose_membership(memberships: Sequence[StoreMembership], wanted: int | None) -> StoreMembership | None:
    """The store the person is working at now: the one they switched to, else their first."""
    chosen = next((row for row in memberships if row.store_id == wanted), None)
    return chosen or (memberships[0] if memberships else None)


def current_membership(request: HttpRequest) -> StoreMembership:
    memberships = list(store_memberships_for(request.user))
    membership = choose_membership(memberships, request.session.get(SESSION_STORE_KEY))
    if membership is None:
        log_refused(request, "store:none", 403)
        raise PermissionDenied("Your account is not staff of any store. Ask your store manager for an invitation.")
    return membership


class ShownStoreForm(forms.Form):
    store = forms.IntegerField(min_value=1, max_value=2**63 - 1)


def shown_membership(request: HttpRequest) -> StoreMembership:
    """The store the page showed, for a write from one of its forms or a search within it: each
    carries it (`store`, hidden) because the person may have switched store in another tab since
    the page loaded, and the session's current store is then another one. 404 if they are not
    its staff. Without the field (a link from elsewhere, a form without it), the current store."""
    data = request.POST if request.method == "POST" else request.GET
    if "store" not in data:
        return current_membership(request)
    shown = ShownStoreForm(data)
    return get_membership_for_staff(request, shown.cleaned_data["store"] if shown.is_valid() else 0)


def require_manager(request: HttpRequest, membership: StoreMembership) -> None:
    if not membership.is_manager:
        log_refused(request, f"store:{membership.store_id}:manager-only", 403)
        raise PermissionDenied("Only a store manager can change this.")
