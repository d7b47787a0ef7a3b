"""drivers 0003 folds the drivers' own outbox into the one outbox: unsent rows move, none lost;
0004 gives the stops routed before it their real package count."""

import datetime as dt
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


BEFORE_ZONES = [("drivers", "0004_replan_and_packing"), ("retailers", "0010_stock_without_duplicate_checks")]
AFTER_ZONES = [("drivers", "0005_document_valid_until"), ("retailers", "0011_market_time_zone")]


@pytest.mark.django_db(transaction=True)
def test_markets_take_their_malls_zone_and_documents_end_their_day_there_and_back(_back_to_latest):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_ZONES)
    old = executor.loader.project_state(BEFORE_ZONES).apps
    Market, Mall = old.get_model("retailers", "Market"), old.get_model("retailers", "Mall")
    phoenix = Market.objects.create(name="Phoenix", slug="phx-migration")
    no_mall = Market.objects.create(name="Reno", slug="reno-migration")
    mall = {"address": "1 Main St", "latitude": "33.3", "longitude": "-111.9"}
    Mall.objects.create(market=phoenix, name="A", slug="phx-a", time_zone="America/Los_Angeles", **mall)
    Mall.objects.create(market=phoenix, name="B", slug="phx-b", time_zone="America/Phoenix", **mall)
    Mall.objects.create(market=phoenix, name="C", slug="phx-c", time_zone="America/Phoenix", **mall)
    documents = []
    for market in (phoenix, no_mall):
        user = old.get_model("auth", "User").objects.create(username=f"dana-{market.slug}")
        driver = old.get_model("drivers", "Driver").objects.create(user=user, home_market=market)
        documents.append(
            old.get_model("drivers", "DriverDocument").objects.create(
                driver=driver, kind="licence", expires_on=dt.date(2026, 11, 23)
            )
        )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER_ZONES)
    new = executor.loader.project_state(AFTER_ZONES).apps
    zones = dict(new.get_model("retailers", "Market").objects.values_list("slug", "time_zone"))
    ends = dict(new.get_model("drivers", "DriverDocument").objects.values_list("pk", "valid_until"))
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_ZONES)
    back = executor.loader.project_state(BEFORE_ZONES).apps

    assert zones == {"phx-migration": "America/Phoenix", "reno-migration": "UTC"}
    assert ends == {
        documents[0].pk: dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC),
        documents[1].pk: dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC),
    }
    assert list(back.get_model("drivers", "DriverDocument").objects.values_list("expires_on", flat=True)) == [
        dt.date(2026, 11, 23),
        dt.date(2026, 11, 23),
    ]
    with connection.cursor() as cursor:
        columns = {
            table: {column.name for column in connection.introspection.get_table_description(cursor, table)}
            for table in ("drivers_driverdocument", "retailers_market")
        }
    assert "valid_until" not in columns["drivers_driverdocument"]
    assert "time_zone" not in columns["retailers_market"]


@pytest.mark.django_db(transaction=True)
def test_pay_settings_that_stopped_dispatch_are_set_to_working_values(_back_to_latest):
    # drivers 0008 and 0009: an answer window under 5 s becomes 5 s, a route capacity of 0
    # becomes 12; the constraints that refuse them from then on could not be added otherwise.
    before, after = [("drivers", "0007_driver_shifts")], [("drivers", "0009_pay_settings_constraints")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Market = old.get_model("retailers", "Market")
    PaySettings = old.get_model("drivers", "MarketPaySettings")
    broken = PaySettings.objects.create(
        market=Market.objects.create(name="Broken", slug="broken-pay", time_zone="America/Los_Angeles"),
        offer_window_seconds=0,
        route_capacity_units=0,
    )
    short = PaySettings.objects.create(
        market=Market.objects.create(name="Short", slug="short-pay", time_zone="America/Los_Angeles"),
        offer_window_seconds=4,
    )
    fine = PaySettings.objects.create(
        market=Market.objects.create(name="Fine", slug="fine-pay", time_zone="America/Los_Angeles"),
        offer_window_seconds=90,
        route_capacity_units=3,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(after)

    new = executor.loader.project_state(after).apps.get_model("drivers", "MarketPaySettings")
    assert {row.pk: (row.offer_window_seconds, row.route_capacity_units) for row in new.objects.all()} == {
        broken.pk: (5, 12),
        short.pk: (5, 12),
        fine.pk: (90, 3),
    }
