"""Migration 0013 keeps every stored eligibility result: ids packed from the pair, and on
PostgreSQL each row in its mall's partition."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from portal.tests.factories import make_listing, make_mall, make_store
from retailers.models import EligibilityResult
from retailers.tests.postgres_helpers import partitions

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("retailers", "0012_categories_lowercase")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def test_migration_packs_the_ids_of_stored_results_and_partitions_them_by_mall():
    store = make_store()
    other_mall = make_mall()
    make_store(seller=store.seller, mall=other_mall)
    tee, mug = make_listing(seller=store.seller), make_listing(seller=store.seller)
    _migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            # Rows as the recompute wrote them before: ids from the table's sequence.
            for listing, mall_id, bits in [(tee, store.mall_id, 0), (mug, store.mall_id, 16), (tee, other_mall.pk, 0)]:
                cursor.execute(
                    "INSERT INTO retailers_eligibilityresult (listing_id, mall_id, eligible, reason_bits, hint,"
                    " computed_at) VALUES (%s, %s, %s, %s, '', '2026-11-18T20:00:00Z')",
                    [listing.pk, mall_id, bits == 0, bits],
                )
    finally:
        _migrate(None)

    rows = list(EligibilityResult.objects.order_by("mall_id", "listing_id").values_list("pk", "listing_id", "mall_id"))
    assert rows == [
        (store.mall_id * 2**32 + tee.pk, tee.pk, store.mall_id),
        (store.mall_id * 2**32 + mug.pk, mug.pk, store.mall_id),
        (other_mall.pk * 2**32 + tee.pk, tee.pk, other_mall.pk),
    ]
    assert EligibilityResult.objects.get(listing=mug).reasons == ["out_of_stock"]
    if connection.vendor == "postgresql":
        assert {
            (f"eligibility_mall_{store.mall_id}", f"FOR VALUES IN ('{store.mall_id}')"),
            (f"eligibility_mall_{other_mall.pk}", f"FOR VALUES IN ('{other_mall.pk}')"),
            ("eligibility_mall_default", "DEFAULT"),
        } <= set(partitions())
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT mall_id, tableoid::regclass::text FROM retailers_eligibilityresult")
            assert dict(cursor.fetchall()) == {
                store.mall_id: f"eligibility_mall_{store.mall_id}",
                other_mall.pk: f"eligibility_mall_{other_mall.pk}",
            }
