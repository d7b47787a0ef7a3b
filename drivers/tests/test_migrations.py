"""drivers 0003 folds the drivers' own outbox into the one outbox: unsent rows move, none lost."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

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
