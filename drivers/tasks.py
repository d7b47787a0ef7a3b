"""Thin Celery tasks: each claims its own work from the database, so running one twice, or in
two workers at once, leaves the same result as once. No business timer lives in a countdown:
the beat schedule calls the sweepers every few seconds."""

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from drivers import services
from orders.lifecycle import OrderStatus
from orders.models import Order
from retailers.models import Mall


@shared_task(name="drivers.build_routes")
def build_routes() -> int:
    """Re-plans routes whose orders changed, then builds routes for every mall with orders on no
    current route that are ready or may be ready before a driver gets there."""
    now = timezone.now()
    services.routes_drop_cancelled_orders(now=now)
    services.routes_replan_packed_orders(now=now)
    routable = Q(status=OrderStatus.READY) | Q(
        status__in=services.PACKING_STATUSES, prep_due_at__lte=now + services.PACKING_LOOKAHEAD
    )
    mall_ids = (
        Order.objects.filter(routable, is_training=False)
        .exclude(route_stops__is_current=True)
        .values_list("store__mall_id", flat=True)
        .distinct()
    )
    built = 0
    for mall in Mall.objects.filter(pk__in=list(mall_ids)).select_related("market"):
        built += len(services.routes_build_for_mall(mall=mall, now=timezone.now()))
    return built


@shared_task(name="drivers.build_routes_for_mall")
def build_routes_for_mall(mall_id: int) -> int:
    mall = Mall.objects.filter(pk=mall_id).first()
    if mall is None:
        return 0
    return len(services.routes_build_for_mall(mall=mall, now=timezone.now()))


@shared_task(name="drivers.sweep_offers")
def sweep_offers() -> int:
    return services.offers_sweep(now=timezone.now())


@shared_task(name="drivers.sweep_documents")
def sweep_documents() -> int:
    now = timezone.now()
    services.documents_remind(now=now)
    return services.documents_sweep(now=now)
