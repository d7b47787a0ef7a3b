"""Access for driver pages. Every driver view starts with one of these: a person who is not a
driver gets 403; another driver's offer, route or stop answers 404 (it does not exist for
them); a write by a driver who is not active answers 403. Every refusal is logged."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from drivers.lifecycle import DriverStatus
from drivers.models import Answer, Driver, DriverShift, OfferRecipient, Route, RouteStop
from portal.security import log_refused


def get_driver(request: HttpRequest) -> Driver:
    driver = Driver.objects.filter(user=request.user).select_related("home_market", "online_market").first()
    if driver is None:
        log_refused(request, "driver:none", 403)
        raise PermissionDenied("This account is not a driver account.")
    return driver


def require_active(request: HttpRequest, driver: Driver) -> None:
    if driver.status != DriverStatus.ACTIVE:
        log_refused(request, f"driver:{driver.pk}:not-active", 403)
        raise PermissionDenied(f"Your driver account is {DriverStatus(driver.status).label.lower()}.")


def get_offer_row_for_driver(request: HttpRequest, driver: Driver, offer_id: int) -> OfferRecipient:
    """The driver's row of an offer that was actually sent to them; 404 otherwise."""
    row = (
        OfferRecipient.objects.filter(offer_id=offer_id, driver=driver, offered_at__isnull=False)
        .exclude(answer=Answer.NOT_OFFERED)
        .select_related("offer__route__mall")
        .first()
    )
    if row is None:
        log_refused(request, f"offer:{offer_id}", 404)
        raise Http404("No such offer.")
    return row


def get_route_for_driver(request: HttpRequest, driver: Driver, pk: int) -> Route:
    route = Route.objects.filter(pk=pk, driver=driver).select_related("mall").first()
    if route is None:
        log_refused(request, f"route:{pk}", 404)
        raise Http404("No such route.")
    return route


def get_stop_for_driver(request: HttpRequest, driver: Driver, pk: int) -> RouteStop:
    stop = (
        RouteStop.objects.filter(pk=pk, route__driver=driver, is_current=True)
        .select_related("route__mall", "order", "store")
        .first()
    )
    if stop is None:
        log_refused(request, f"stop:{pk}", 404)
        raise Http404("No such stop.")
    return stop


def get_shift_for_driver(request: HttpRequest, driver: Driver, pk: int) -> DriverShift:
    shift = DriverShift.objects.filter(pk=pk, driver=driver).select_related("market").first()
    if shift is None:
        log_refused(request, f"shift:{pk}", 404)
        raise Http404("No such shift.")
    return shift
