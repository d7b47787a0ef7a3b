"""The task bodies, called directly (the worker's own behaviour is tested in portal/tests)."""

from decimal import Decimal

import pytest

from drivers import tasks
from drivers.models import Offer, Route
from drivers.tests.factories import make_driver, make_ready_order
from portal.tests.factories import make_mall, make_store

pytestmark = pytest.mark.django_db


def test_build_routes_task_routes_each_ready_order_once():
    mall = make_mall()
    make_driver(market=mall.market, online=True)
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)

    assert tasks.build_routes() == 1
    assert tasks.build_routes() == 0
    assert Route.objects.count() == 1
    assert Offer.objects.count() == 1


def test_build_routes_for_mall_task_quiet_when_mall_gone():
    assert tasks.build_routes_for_mall(999999) == 0


def test_sweep_tasks_quiet_with_nothing_due():
    assert (tasks.sweep_offers(), tasks.sweep_documents()) == (0, 0)


def test_beat_schedule_runs_dispatch_sweepers(settings):
    assert settings.CELERY_BEAT_SCHEDULE["drivers-sweep-offers"] == {"task": "drivers.sweep_offers", "schedule": 2.0}
    assert settings.CELERY_BEAT_SCHEDULE["drivers-build-routes"]["task"] == "drivers.build_routes"
