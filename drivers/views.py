"""Driver pages under /driver/, phone first: going online, offers, the active route and proof
of delivery. Every view starts with an access helper (403 for non-drivers, 404 for another
driver's offer, route or stop)."""

import datetime as dt
import functools
import hashlib

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from drivers import selectors, services
from drivers.access import (
    get_driver,
    get_offer_row_for_driver,
    get_route_for_driver,
    get_shift_for_driver,
    get_stop_for_driver,
    require_active,
)
from drivers.forms import DeliverForm, ForfeitForm, OnlineForm, ReasonForm, ShiftForm
from drivers.models import Answer, Driver, Route, RouteStatus, RouteStop, StopStatus
from drivers.pay import hourly_equivalent_cents
from orders.lifecycle import OrderStatus
from portal.counters import count_in_window
from portal.errors import ActionRefused


def _home_page(request: HttpRequest, **kwargs: object) -> str:
    return reverse("driver:home")


def _route_page(request: HttpRequest, pk: int, **kwargs: object) -> str:
    return reverse("driver:route", args=[pk])


def _route_page_of_stop(request: HttpRequest, pk: int) -> str:
    # Only the driver's own stop names its route; anything else goes home (as a 404 would).
    route_id = RouteStop.objects.filter(pk=pk, route__driver__user_id=request.user.pk).values_list("route_id").first()
    return _route_page(request, route_id[0]) if route_id else _home_page(request)


def _post_only(page):
    """An action's address answers POST. A GET there (the page a form answered with errors at
    that address, reloaded; a shared link) goes to `page(request, **kwargs)`, the page the
    action belongs to, instead of a bare 405."""

    def decorate(view):
        posted = require_POST(view)

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method in {"GET", "HEAD"}:
                return redirect(page(request, **kwargs))
            return posted(request, *args, **kwargs)

        return wrapped

    return decorate


NOT_YOURS_ANY_MORE = "That route is no longer yours: it was given back, or an operator passed it to another driver."


def _home_when_out_of_reach(view):
    """A route the driver can no longer reach (given back in another tab, passed to another driver
    by an operator) still answers 404; a request from the page (its poll, a tap) also takes the
    driver to their home page with a message, since htmx swaps nothing for a 404."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404:
            if not request.htmx:
                raise
            messages.warning(request, NOT_YOURS_ANY_MORE)
            return HttpResponse(status=404, headers={"HX-Redirect": reverse("driver:home")})

    return wrapped


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """To another page after an action: the whole tab for htmx (HX-Redirect), a redirect without."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _offer_cards(driver: Driver) -> list[dict]:
    cards = []
    now = timezone.now()
    for row in selectors.offer_rows_for_driver(driver=driver, now=now):
        offer = row.offer
        route = offer.route
        stops = list(route.stops.all())
        cards.append(
            {
                "offer": offer,
                "route": route,
                "stops": len(stops),
                "stores": sorted({stop.store.name for stop in stops}),
                # Stops whose order the store is still packing: the driver may wait at the counter.
                "packing": [stop for stop in stops if stop.order.status in services.PACKING_STATUSES],
                "hourly_cents": hourly_equivalent_cents(total_cents=offer.pay_cents, minutes=route.estimated_minutes),
                "due_iso": offer.due_at.isoformat(timespec="seconds"),
                "seconds_left": max(0, int((offer.due_at - now).total_seconds())),
            }
        )
    return cards


class _Documents:
    """The driver's documents for the page, read only when the template shows them (not for the
    offers fragment the page polls every 10 s)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    @cached_property
    def rows(self) -> list[selectors.DocumentStatus]:
        return selectors.document_statuses(driver=self.driver, now=timezone.now())

    @property
    def to_renew(self) -> bool:
        return any(document.state != "valid" for document in self.rows)


class _Shifts:
    """The driver's shifts not yet ended, in their home market's local time, read only when the
    template shows them (not for the offers fragment the page polls every 10 s)."""

    def __init__(self, driver: Driver, form: ShiftForm | None) -> None:
        self.driver = driver
        self.form = form or ShiftForm(tz=driver.home_market.tz)

    @cached_property
    def rows(self) -> list[dict]:
        now = timezone.now()
        return [
            {"shift": shift, "label": shift.local_label(), "under_way": shift.covers(now)}
            for shift in selectors.upcoming_shifts_for_driver(driver=self.driver, now=now)
        ]


def _home_context(
    driver: Driver, *, online_form: OnlineForm | None = None, shift_form: ShiftForm | None = None, **extra: object
) -> dict:
    initial = {
        "market": driver.online_market or driver.home_market,
        "latitude": driver.latitude,
        "longitude": driver.longitude,
    }
    active_route = selectors.active_route_for_driver(driver=driver)
    return {
        "driver": driver,
        # A driver on a route cannot take another (offer_accept refuses): offers sent before they
        # took this one are not shown as if they could.
        "offers": [] if active_route else _offer_cards(driver),
        "active_route": active_route,
        "returns": selectors.returns_for_driver(driver=driver),
        "documents": _Documents(driver),
        "shifts": _Shifts(driver, shift_form),
        "online_form": online_form or OnlineForm(initial=initial),
        **extra,
    }


def _home_response(request: HttpRequest, driver: Driver, *, status: int = 200, **extra: object) -> HttpResponse:
    template = "driver/home.html#offers" if request.htmx and not extra.get("full") else "driver/home.html"
    return render(request, template, _home_context(driver, **extra), status=status)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    driver = get_driver(request)
    return _home_response(request, driver)


TRIPS_PER_PAGE = 20


def _day_label(day: dt.date, today: dt.date) -> str:
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    return f"{day:%A}, {day:%B} {day.day}" + ("" if day.year == today.year else f", {day.year}")


@require_GET
@login_required
def trips(request: HttpRequest) -> HttpResponse:
    """The driver's finished trips and what they earned, by day in their home market's time,
    newest first, with their totals and their standing (what offers are ranked by)."""
    driver = get_driver(request)
    now = timezone.now()
    tz = driver.home_market.tz
    trips = selectors.trips_for_driver(driver=driver)
    page = Paginator(trips, TRIPS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page)
    totals = {}
    if rows:
        # A day's total counts all its trips, also those on the pages before and after this one.
        oldest, newest = rows[-1].closed_at.astimezone(tz).date(), rows[0].closed_at.astimezone(tz).date()
        totals = selectors.earnings_by_day(driver=driver, tz=tz, first=oldest, last=newest)
    today = now.astimezone(tz).date()
    days: list[dict] = []
    for offer in rows:
        day = offer.closed_at.astimezone(tz).date()
        if not days or days[-1]["day"] != day:
            days.append({"label": _day_label(day, today), "day": day, "total": totals.get(day), "trips": []})
        days[-1]["trips"].append(
            {
                "offer": offer,
                "route": offer.route,
                "wait_cents": offer.route.wait_pay_cents,
                "route_cents": max(0, offer.pay_cents - offer.route.wait_pay_cents),
                "linked": offer.route.driver_id == driver.pk,
            }
        )
    context = {
        "driver": driver,
        "earnings": selectors.earnings_for_driver(driver=driver, now=now),
        "standing": selectors.driver_standing(driver=driver, now=now),
        "standing_days": selectors.STANDING_DAYS,
        "days": days,
        "page": page,
    }
    return render(request, "driver/trips.html", context)


@_post_only(_home_page)
@login_required
def go_online(request: HttpRequest) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    form = OnlineForm(request.POST)
    if not form.is_valid():
        return render(request, "driver/home.html", _home_context(driver, online_form=form), status=422)
    try:
        services.driver_go_online(
            driver=driver,
            market=form.cleaned_data["market"],
            latitude=form.cleaned_data["latitude"],
            longitude=form.cleaned_data["longitude"],
        )
    except ActionRefused as refused:
        return render(
            request,
            "driver/home.html",
            _home_context(driver, online_form=form, online_error=refused.message),
            status=422,
        )
    messages.success(request, f"You are online in {form.cleaned_data['market']}.")
    return redirect("driver:home")


@_post_only(_home_page)
@login_required
def go_offline(request: HttpRequest) -> HttpResponse:
    driver = get_driver(request)
    services.driver_go_offline(driver=driver, acting_user=request.user)
    messages.success(request, "You are offline: no more offers until you go online.")
    return redirect("driver:home")


def _shifts_response(
    request: HttpRequest, driver: Driver, *, notice: str = "", status: int = 200, **extra: object
) -> HttpResponse:
    """The Shifts card for htmx; otherwise the page after a redirect (with the notice as a
    message) or, for an error, the whole page at once."""
    if request.htmx:
        # Only what the card reads: not the offers and route queries of the whole page.
        context = {"driver": driver, "shifts": _Shifts(driver, extra.pop("shift_form", None)), "shift_notice": notice}
        return render(request, "driver/home.html#shifts", context | extra, status=status)
    if status != 200:
        return render(request, "driver/home.html", _home_context(driver, **extra), status=status)
    messages.success(request, notice)
    return redirect("driver:home")


@_post_only(_home_page)
@login_required
def shift_schedule(request: HttpRequest) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    form = ShiftForm(request.POST, tz=driver.home_market.tz)
    if not form.is_valid():
        return _shifts_response(request, driver, status=422, shift_form=form)
    try:
        shift = services.driver_shift_schedule(
            driver=driver,
            starts_at=form.cleaned_data["starts_at"],
            ends_at=form.cleaned_data["ends_at"],
            now=timezone.now(),
        )
    except ActionRefused as refused:
        return _shifts_response(request, driver, status=422, shift_form=form, shift_error=refused.message)
    return _shifts_response(request, driver, notice=f"Shift scheduled: {shift.local_label()}.")


@_post_only(_home_page)
@login_required
def shift_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    driver = get_driver(request)
    shift = get_shift_for_driver(request, driver, pk)
    label = shift.local_label()
    try:
        kept = services.driver_shift_cancel(driver=driver, shift=shift, now=timezone.now())
    except ActionRefused as refused:
        return _shifts_response(request, driver, status=409, shift_error=refused.message)
    notice = f"Shift {label} ended now." if kept is not None else f"Shift {label} cancelled."
    return _shifts_response(request, driver, notice=notice)


@_post_only(_home_page)
@login_required
def offer_accept(request: HttpRequest, offer_id: int) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    row = get_offer_row_for_driver(request, driver, offer_id)
    try:
        services.offer_accept(offer=row.offer, driver=driver)
    except ActionRefused as refused:
        return _home_response(request, driver, status=409, error=refused.message)
    url = reverse("driver:route", args=[row.offer.route_id])
    messages.success(request, "The route is yours. Head to the mall.")
    return _go(request, url)


@_post_only(_home_page)
@login_required
def offer_decline(request: HttpRequest, offer_id: int) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    row = get_offer_row_for_driver(request, driver, offer_id)
    try:
        services.offer_decline(offer=row.offer, driver=driver)
    except ActionRefused as refused:
        row.refresh_from_db(fields=["answer"])
        if row.answer != Answer.DECLINED:
            return _home_response(request, driver, status=409, error=refused.message)
        # Sent twice (a double tap): answered as the first was (whose message, without htmx,
        # waits in the session).
        if not request.htmx:
            return redirect("driver:home")
    if request.htmx:
        return _home_response(request, driver, notice="Offer declined.")
    messages.success(request, "Offer declined.")
    return redirect("driver:home")


def _route_context(route: Route, *, bound_deliver_forms: dict | None = None, **extra: object) -> dict:
    route = selectors.route_detail_for_driver(route=route)
    offer = selectors.accepted_offer_for(route)
    stops = list(route.stops.all())
    stores: dict[int, dict] = {}
    for stop in stops:
        entry = stores.setdefault(
            stop.store_id, {"store": stop.store, "labels": [], "pending": False, "packing_until": None}
        )
        entry["labels"] += [package.label_code for package in stop.order.packages.all()]
        entry["pending"] = entry["pending"] or stop.status == StopStatus.PENDING
        if stop.order.status in services.PACKING_STATUSES:
            # Still being packed: the latest time the store promised for this counter.
            promised = stop.ready_expected_at or stop.order.prep_due_at
            entry["packing_until"] = max(filter(None, [entry["packing_until"], promised]))
    code = offer.pickup_code if offer else ""
    # What the page shows that others change (a store packing, a handoff, an operator): the
    # page's poll (while the route is assigned) gets 204 until it changes.
    seen = (
        route.status,
        route.driver_id,
        offer.pk if offer else None,
        [(stop.pk, stop.status, stop.order.status) for stop in stops],
        [(pk, entry["labels"], entry["pending"], str(entry["packing_until"])) for pk, entry in stores.items()],
    )
    return {
        "route": route,
        "version": hashlib.sha256(repr(seen).encode()).hexdigest()[:16],
        "offer": offer,
        "stops": stops,
        "stores": list(stores.values()),
        "pickup_code": code,
        "pickup_qr": segno.make(code, error="m", micro=False).svg_data_uri(scale=6, border=2) if code else "",
        # Before any pickup the whole route; after some, the stores not yet visited.
        "can_forfeit": offer is not None
        and offer.status == "accepted"
        and (
            route.status == RouteStatus.ASSIGNED
            or (route.status == RouteStatus.UNDER_WAY and any(entry["pending"] for entry in stores.values()))
        ),
        "deliver_forms": {
            stop.pk: DeliverForm(auto_id=f"deliver-{stop.pk}-%s", requires_pin=stop.order.requires_pin)
            for stop in stops
        }
        | (bound_deliver_forms or {}),
        "reason_form": ReasonForm(),
        "picked_up": StopStatus.PICKED_UP,
        "pending": StopStatus.PENDING,
        "returning": OrderStatus.RETURNING,
        **extra,
    }


def _route_response(request: HttpRequest, route: Route, *, status: int = 200, **extra: object) -> HttpResponse:
    template = "driver/route.html#route" if request.htmx else "driver/route.html"
    return render(request, template, _route_context(route, **extra), status=status)


@require_GET
@login_required
@_home_when_out_of_reach
def route_detail(request: HttpRequest, pk: int) -> HttpResponse:
    driver = get_driver(request)
    route = get_route_for_driver(request, driver, pk)
    since = request.GET.get("since")
    if since is None or not request.htmx:
        return _route_response(request, route)
    # The page's poll: nothing to swap while nothing changed (htmx swaps nothing on a 204).
    context = _route_context(route)
    if context["version"] == since:
        return HttpResponse(status=204)
    seen_replans = request.GET.get("replans", "")[:5]  # a small count; anything else is no count
    if route.replan_reason and seen_replans.isascii() and seen_replans.isdigit() and route.replans > int(seen_replans):
        # Re-planned since the page was loaded: say why (an order cancelled, a package count).
        context["notice"] = f"This route changed: {route.replan_reason}."
    else:
        context["notice"] = f"This route was updated: {route.get_status_display().lower()}."
    return render(request, "driver/route.html#route", context)


@_post_only(_route_page)
@login_required
@_home_when_out_of_reach
def route_forfeit(request: HttpRequest, pk: int) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    if selectors.route_given_back_by(driver=driver, route_id=pk):
        # Sent twice (a double tap): the first gave it back, and its message waits in the session.
        return _go(request, reverse("driver:home"))
    route = get_route_for_driver(request, driver, pk)
    form = ForfeitForm(request.POST)
    if not form.is_valid():
        # A typed reason the database cannot store (a null character, too long): say so.
        errors = "; ".join(form.errors["reason"])
        return _route_response(request, route, status=422, error=f"Reason: {errors}")
    offer = selectors.accepted_offer_for(route)
    try:
        if offer is None:
            raise ActionRefused("This route is finished.", code="illegal-transition")
        services.offer_forfeit(offer=offer, driver=driver, reason=form.cleaned_data["reason"])
    except ActionRefused as refused:
        if refused.code == "started" and selectors.route_part_given_back_by(driver=driver, route_id=route.pk):
            # Sent twice (a double tap): the first gave back the unvisited stores, and its message
            # waits in the session.
            url = reverse("driver:route", args=[route.pk])
            return _go(request, url)
        return _route_response(request, route, status=409, error=refused.message)
    route.refresh_from_db()
    if route.driver_id == driver.pk and route.status == RouteStatus.UNDER_WAY:
        # Part of it was picked up: that part stays with the driver.
        messages.success(request, "You gave back the stores you had not visited. Deliver the packages in your car.")
        url = reverse("driver:route", args=[route.pk])
    else:
        messages.success(request, "You gave the route back. It is offered to other drivers.")
        url = reverse("driver:home")
    return _go(request, url)


@_post_only(_route_page)
@login_required
@_home_when_out_of_reach
def route_check_in(request: HttpRequest, pk: int, store_id: int) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    route = get_route_for_driver(request, driver, pk)
    store = next((stop.store for stop in route.stops.select_related("store") if stop.store_id == store_id), None)
    try:
        if store is None:
            raise ActionRefused("That store is not on your route.", code="validation")
        check_in = services.route_check_in(route=route, store=store, driver=driver)
    except ActionRefused as refused:
        return _route_response(request, route, status=422, error=refused.message)
    notice = f"Checked in at {store.name}: show your pickup code at the counter."
    if not check_in.store_was_ready:
        grace = services.pay_settings_for(route.mall.market_id).rules.wait_grace_minutes
        notice += f" The store is still packing: your wait past {grace} minutes is paid."
    if request.htmx:
        return _route_response(request, route, notice=notice)
    messages.success(request, notice)
    return redirect("driver:route", pk=route.pk)


# A shopper's PIN has 4 digits: unlimited tries would find it in minutes. After this many wrong
# ones for an order, its PIN is not checked for a while (counted in the cache, as the /join/ limit).
PIN_ATTEMPTS = 5
PIN_LOCKOUT_SECONDS = 15 * 60


def _pin_key(stop) -> str:
    return f"driver-pin-wrong:{stop.pk}:{stop.order_id}"


@_post_only(_route_page_of_stop)
@login_required
@_home_when_out_of_reach
def stop_deliver(request: HttpRequest, pk: int) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    stop = get_stop_for_driver(request, driver, pk)
    form = DeliverForm(request.POST, request.FILES, requires_pin=stop.order.requires_pin, auto_id=f"deliver-{pk}-%s")
    if not form.is_valid():
        forms = {stop.pk: form}
        return _route_response(
            request, stop.route, status=422, error="Check the delivery form.", bound_deliver_forms=forms
        )
    try:
        if stop.order.requires_pin and cache.get(_pin_key(stop), 0) >= PIN_ATTEMPTS:
            raise ActionRefused(
                f"Five wrong PINs for this order: wait {PIN_LOCKOUT_SECONDS // 60} minutes before trying again, "
                "or report that it could not be delivered.",
                code="pin-locked",
            )
        services.stop_deliver(stop=stop, driver=driver, photo=form.cleaned_data["photo"], pin=form.cleaned_data["pin"])
    except ActionRefused as refused:
        if refused.code == "wrong-pin":
            count_in_window(_pin_key(stop), seconds=PIN_LOCKOUT_SECONDS)
        stop.refresh_from_db(fields=["status"])
        if stop.status == StopStatus.DELIVERED:
            # Sent twice (a double tap): the first delivered it and its message waits in the session.
            return redirect("driver:route", pk=stop.route_id)
        if refused.code in {"wrong-pin", "pin-locked"}:
            # Said at the PIN field of this drop, which takes the focus.
            form.add_error("pin", refused.message)
            form.mark_errors()
            return _route_response(
                request, stop.route, status=422, error="Check the delivery form.", bound_deliver_forms={stop.pk: form}
            )
        return _route_response(request, stop.route, status=422, error=refused.message)
    notice = f"Order {stop.order.number} delivered."
    if request.htmx:
        return _route_response(request, stop.route, notice=notice)
    messages.success(request, notice)
    return redirect("driver:route", pk=stop.route_id)


@_post_only(_route_page_of_stop)
@login_required
@_home_when_out_of_reach
def stop_undeliverable(request: HttpRequest, pk: int) -> HttpResponse:
    driver = get_driver(request)
    require_active(request, driver)
    stop = get_stop_for_driver(request, driver, pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        # The stop's form stays open, with the error at its field (not only at the top of the page).
        problem = {"stop": stop.pk, "errors": [str(error) for error in form.errors.get("reason", [])]}
        return _route_response(
            request, stop.route, status=422, error="Say why it could not be delivered.", problem=problem
        )
    try:
        services.stop_mark_undeliverable(stop=stop, driver=driver, reason=form.cleaned_data["reason"])
    except ActionRefused as refused:
        stop.refresh_from_db(fields=["status"])
        if stop.status == StopStatus.UNDELIVERABLE:
            # Sent twice (a double tap): the first recorded it and its message waits in the session.
            return redirect("driver:route", pk=stop.route_id)
        return _route_response(request, stop.route, status=422, error=refused.message)
    notice = f"Order {stop.order.number} is going back to {stop.store.name}: return the packages there."
    if request.htmx:
        return _route_response(request, stop.route, notice=notice)
    messages.success(request, notice)
    return redirect("driver:route", pk=stop.route_id)
