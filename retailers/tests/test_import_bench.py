"""The 100,000-row stock file applies in under 60 s on PostgreSQL (issue 5 point 5)."""

import time

import pytest

from portal.tests.factories import make_mall, make_seller
from retailers.importing import import_apply
from retailers.models import Listing, Stock, Store, StoreEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
STORES = 20
LISTINGS = 5_000


def test_import_apply_100k_stock_rows_under_60_seconds():
    seller = make_seller()
    mall = make_mall()
    stores = Store.objects.bulk_create(
        Store(seller=seller, mall=mall, name=f"Store {i}", unit=f"U-{i}") for i in range(STORES)
    )
    Listing.objects.bulk_create(
        Listing(seller=seller, seller_sku=f"SKU-{i}", title=f"Item {i}", category="apparel", weight_grams=100)
        for i in range(LISTINGS)
    )
    lines = ["store,seller_sku,on_hand"]
    lines += [f"{store.unit},SKU-{i},{(i % 7) + 1}" for store in stores for i in range(LISTINGS)]
    created_file = ("\n".join(lines) + "\n").encode()
    updated_file = created_file.replace(b",1\n", b",9\n")

    started = time.perf_counter()
    first = import_apply(seller=seller, kind="stock", name="s.csv", data=created_file, acting_user=None)
    created_seconds = time.perf_counter() - started
    started = time.perf_counter()
    second = import_apply(seller=seller, kind="stock", name="s.csv", data=updated_file, acting_user=None)
    updated_seconds = time.perf_counter() - started
    print(f"\nIMPORT 100k stock rows: all created {created_seconds:.1f} s; 1/7 updated {updated_seconds:.1f} s")

    assert (first.rows, first.created, first.updated) == (100_000, 100_000, 0)
    assert (second.updated, second.unchanged) == (STORES * 715, 100_000 - STORES * 715)
    assert Stock.objects.count() == 100_000
    assert Stock.objects.filter(on_hand=9).count() == STORES * 715
    assert StoreEvent.objects.filter(type="stock.imported").count() == 2 * STORES
    assert created_seconds < 60
    assert updated_seconds < 60
