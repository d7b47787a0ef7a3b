"""drivers 0003 folds the drivers' own outbox into the one outbox: unsent rows move, none lost;
0004 gives the stops routed before it their real package count."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from drivers import services
from drivers.models import RouteStop
from drivers.tests.factories import make_ready_order
from portal.tests.factories import make_mall, make_store

# retailers back to before its later Market columns, so the old Market model can be created.
BEFORE = [("drivers", "0002_routes_offers"), ("notifications", "0001_outbox"), ("retailers", "0005_import_job")]
AFTER = [("drivers", "0003_notifications_to_outbox")]


@pytest.fixture
def _back_to_latest():
    yield
    # Leave the schema as every other test expects it: all migrations applied.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_unsent_driver_notifications_move_to_the_outbox(_back_to_latest):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    market = old.get_model("retailers", "Market").objects.create(name="Las Vegas", slug="lv-migration")
    user = old.get_model("auth", "User").objects.create(username="dana-m", email="dana@example.com")
    driver = old.get_model("drivers", "Driver").objects.create(user=user, home_market=market, phone="+17025550100")
    rows = old.get_model("drivers", "DriverNotification").objects
    common = {"driver": driver, "kind": "offer", "subject": "New route", "body": "3 stops"}
    rows.create(channel="sms", dedupe_key="offer-1", **common)
    rows.create(channel="email", dedupe_key="offer-2", **common)
    rows.create(channel="email", dedupe_key="offer-3", sent_at=driver.created_at, **common)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    moved = new.get_model("notifications", "Notification").objects.order_by("dedupe_key")

    assert [(row.dedupe_key, row.channel, row.to, row.status) for row in moved] == [
        ("offer-1", "sms", "+17025550100", "pending"),
        ("offer-2", "email", "dana@example.com", "pending"),
    ]


@pytest.mark.django_db
def test_0004_gives_existing_stops_their_real_package_count():
    migration = importlib.import_module("drivers.migrations.0004_replan_and_packing")
    mall = make_mall()
    make_ready_order(store=make_store(mall=mall), packages=3, latitude=Decimal("36.150000"), longitude=mall.longitude)
    services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    RouteStop.objects.update(planned_packages=1)  # as the AddField default left them

    migration.count_planned_packages(apps, None)

    assert list(RouteStop.objects.values_list("planned_packages", flat=True)) == [3]
