"""/store/stock: store staff keep their own store's same-day stock current and see at once what
it does to same-day eligibility in their mall."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from portal.errors import ActionRefused
from retailers.access import shown_membership
from retailers.eligibility import REASON_LABELS
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import EligibilityResult, Listing, Stock, Store
from retailers.stock_services import MAX_ON_HAND, stock_set_on_hand

TEMPLATE = "store/stock.html"
PAGE_SIZE = 50


class OnHandForm(forms.Form):
    on_hand = forms.IntegerField(
        min_value=0,
        max_value=MAX_ON_HAND,
        error_messages={"required": "Enter how many are on the shelf.", "invalid": "Enter a whole number."},
    )
    # The on-hand count the page showed when the person started typing (see stock_set_on_hand).
    was = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


class StockRow:
    def __init__(self, listing: Listing, stock: Stock | None, result: EligibilityResult | None, form=None):
        self.listing = listing
        self.on_hand = stock.on_hand if stock else 0
        self.reserved = stock.reserved if stock else 0
        self.available = self.on_hand - self.reserved
        self.result = result
        self.reasons = [REASON_LABELS[code] for code in result.reasons] if result else []
        self.form = form or OnHandForm(initial={"on_hand": self.on_hand})


def _rows(store: Store, listings: list[Listing], forms_by_listing: dict | None = None) -> list[StockRow]:
    ids = [listing.pk for listing in listings]
    stock = {row.listing_id: row for row in Stock.objects.filter(store=store, listing_id__in=ids)}
    results = {row.listing_id: row for row in EligibilityResult.objects.filter(mall=store.mall, listing_id__in=ids)}
    forms_by_listing = forms_by_listing or {}
    return [
        StockRow(listing, stock.get(listing.pk), results.get(listing.pk), forms_by_listing.get(listing.pk))
        for listing in listings
    ]


@require_GET
@login_required
def stock_list(request: HttpRequest) -> HttpResponse:
    store = shown_membership(request).store
    query = request.GET.get("q", "").strip()[:100]
    listings = Listing.objects.filter(seller_id=store.seller_id).order_by("seller_sku")
    if query:
        listings = listings.filter(Q(seller_sku__icontains=query) | Q(title__icontains=query))
    page = Paginator(listings, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"store": store, "query": query, "page": page, "rows": _rows(store, list(page.object_list))}
    template = f"{TEMPLATE}#stock-table" if request.htmx else TEMPLATE
    return render(request, template, context)


@require_POST
@login_required
def stock_update(request: HttpRequest, listing_id: int) -> HttpResponse:
    store = shown_membership(request).store
    listing = get_object_or_404(Listing, pk=listing_id, seller_id=store.seller_id)
    form = OnHandForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            stock_set_on_hand(
                store=store,
                listing=listing,
                on_hand=form.cleaned_data["on_hand"],
                acting_user=request.user,
                was=form.cleaned_data["was"],
            )
        except ActionRefused as refused:
            form.add_error("on_hand", refused.message)
    if form.is_valid():
        # Recomputed here too, so the row shows the new eligibility without waiting for the worker.
        eligibility_recompute(listing_ids=[listing.pk])
        if not request.htmx:
            # Without JavaScript: back to the page narrowed to this listing, with what happened.
            messages.success(request, f"{listing.seller_sku}: {form.cleaned_data['on_hand']} on hand, saved.")
            return redirect(f"{reverse('store:stock')}?{urlencode({'q': listing.seller_sku})}")
        form = None
    else:
        status = 422
    rows = _rows(store, [listing], {listing.pk: form} if form is not None else None)
    if not request.htmx:
        # Without JavaScript: the page again, narrowed to this listing, with the error beside it.
        context = {"store": store, "query": listing.seller_sku, "page": None, "rows": rows}
        return render(request, TEMPLATE, context, status=status)
    # The row, and what happened to it for the page's live region (an out-of-band swap).
    return render(request, f"{TEMPLATE}#stock-saved", {"store": store, "row": rows[0]}, status=status)
