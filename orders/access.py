from django.http import Http404, HttpRequest

from orders.models import Order
from portal.security import log_refused
from retailers.access import store_memberships_for


def get_order_for_staff(request: HttpRequest, pk: int) -> Order:
    """The order, if it belongs to one of the person's active stores; 404 otherwise."""
    store_ids = store_memberships_for(request.user).values("store_id")
    order = Order.objects.filter(pk=pk, store_id__in=store_ids).select_related("store__mall", "store__seller").first()
    if order is None:
        log_refused(request, f"order:{pk}", 404)
        raise Http404("No such order.")
    return order
