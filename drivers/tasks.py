"""Thin Celery tasks: each claims its own work from the database, so running one twice, or in
two workers at once, leaves the same result as once. No business timer lives in a countdown:
the beat schedule calls the sweepers every few seconds."""

from celery import shared_task
from django.utils import timezone

from drivers import services
from orders.lifecycle import OrderStatus
from orders.models import Order
from retailers.models import Mall


@shared_task(name="drivers.build_routes")
def build_routes() -> int:
    """Builds routes for every mall with ready orders on no current route."""
    services.routes_drop_cancelled_orders(now=timezone.now())
    mall_ids = (
        Order.objects.filter(status=OrderStatus.READY, is_training=False)
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
    return services.documents_sweep(now=timezone.now())
