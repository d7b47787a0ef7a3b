"""Bulk import of listings and stock (issue 5 point 5): parsing, dry run, all-or-nothing apply."""

import io
import zipfile

import openpyxl
import pytest

from portal.tests.factories import make_listing, make_seller, make_stock, make_store, make_user
from retailers.importing import ImportRefused, import_apply, import_preview
from retailers.models import EligibilityRequest, Listing, Stock, StoreEvent
from retailers.models import EligibilityRequestKind as Kind

pytestmark = pytest.mark.django_db


def csv_bytes(text: str) -> bytes:
    return text.encode()


def requested_listings() -> list[int]:
    """The listings whose eligibility recompute was requested (the hooks' outbox rows)."""
    return sorted(EligibilityRequest.objects.filter(kind=Kind.LISTING).values_list("object_id", flat=True))


def stock_snapshot() -> list[tuple]:
    return list(Stock.objects.order_by("pk").values_list("store_id", "listing_id", "on_hand", "reserved"))


@pytest.fixture
def shop():
    seller = make_seller()
    store = make_store(seller=seller, unit="L1-100")
    other = make_store(seller=seller, unit="L2-200")
    shirt = make_listing(seller=seller, seller_sku="SHIRT")
    hat = make_listing(seller=seller, seller_sku="HAT")
    make_stock(store=store, listing=shirt, on_hand=5, reserved=2)
    return {"seller": seller, "store": store, "other": other, "shirt": shirt, "hat": hat}


def test_import_preview_stock_counts_changes_and_writes_nothing(shop):
    data = csv_bytes(f"store,seller_sku,on_hand\nL1-100,SHIRT,7\n{shop['other'].pk},SHIRT,3\nL1-100,HAT,0\n")
    before = stock_snapshot()

    report = import_preview(seller=shop["seller"], kind="stock", name="s.csv", data=data)

    assert (report.rows, report.created, report.updated, report.unchanged, report.error_count) == (3, 2, 1, 0, 0)
    assert report.preview[0] == {
        "row": 2,
        "action": "update",
        "store": shop["store"].name,
        "seller_sku": "SHIRT",
        "on_hand": 7,
        "before": 5,
    }
    assert stock_snapshot() == before
    assert StoreEvent.objects.count() == 0


def test_import_apply_stock_writes_events_and_requests_recompute(shop):
    data = csv_bytes(f"store,seller_sku,on_hand\nL1-100,SHIRT,7\n{shop['other'].pk},SHIRT,3\nL1-100,HAT,5\n")
    user = make_user(is_staff=True)
    EligibilityRequest.objects.all().delete()

    report = import_apply(seller=shop["seller"], kind="stock", name="s.csv", data=data, acting_user=user)

    assert report.applied is True
    stock = {(s.store_id, s.listing.seller_sku): (s.on_hand, s.reserved) for s in Stock.objects.all()}
    assert stock == {
        (shop["store"].pk, "SHIRT"): (7, 2),
        (shop["store"].pk, "HAT"): (5, 0),
        (shop["other"].pk, "SHIRT"): (3, 0),
    }
    events = {e.store_id: e.data for e in StoreEvent.objects.filter(type="stock.imported")}
    assert events == {
        shop["store"].pk: {"created": 1, "updated": 1, "unchanged": 0},
        shop["other"].pk: {"created": 1, "updated": 0, "unchanged": 0},
    }
    assert requested_listings() == sorted([shop["shirt"].pk, shop["hat"].pk])


def test_import_apply_stock_xlsx(shop):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["seller_sku", "on_hand", "store"])
    sheet.append(["SHIRT", 9, "L1-100"])
    buffer = io.BytesIO()
    book.save(buffer)

    report = import_apply(seller=shop["seller"], kind="stock", name="s.xlsx", data=buffer.getvalue(), acting_user=None)

    assert (report.updated, report.created) == (1, 0)
    assert Stock.objects.get(store=shop["store"], listing=shop["shirt"]).on_hand == 9


def test_import_apply_stock_is_all_or_nothing(shop):
    data = csv_bytes("store,seller_sku,on_hand\nL1-100,SHIRT,7\nL1-100,NOPE,3\n")
    before = stock_snapshot()
    EligibilityRequest.objects.all().delete()

    with pytest.raises(ImportRefused) as refused:
        import_apply(seller=shop["seller"], kind="stock", name="s.csv", data=data, acting_user=None)

    assert refused.value.message == "Nothing was imported: 1 row has errors. Fix them and upload the file again."
    assert stock_snapshot() == before
    assert StoreEvent.objects.count() == 0
    assert requested_listings() == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("L1-100,SHIRT,-3", "on_hand must not be negative, got -3."),
        ("L1-100,SHIRT,many", 'on_hand must be a whole number, got "many".'),
        ("L1-100,SHIRT,1", "on_hand 1 is below the 2 units reserved by open orders."),
        ("L1-100,NOPE,1", 'unknown seller_sku "NOPE".'),
        ("L9-999,SHIRT,1", 'unknown store "L9-999" (use the unit or id of one of your stores).'),
    ],
)
def test_import_preview_stock_row_errors(shop, line, message):
    data = csv_bytes(f"store,seller_sku,on_hand\n{line}\n")

    report = import_preview(seller=shop["seller"], kind="stock", name="s.csv", data=data)

    assert report.errors == [(2, message)]
    assert (report.created, report.updated) == (0, 0)


def test_import_preview_stock_another_sellers_store_is_a_row_error(shop):
    stranger = make_store(unit="L3-300")
    data = csv_bytes(f"store,seller_sku,on_hand\n{stranger.pk},SHIRT,1\nL3-300,SHIRT,1\n")

    report = import_preview(seller=shop["seller"], kind="stock", name="s.csv", data=data)

    assert report.errors == [
        (2, f'unknown store "{stranger.pk}" (use the unit or id of one of your stores).'),
        (3, 'unknown store "L3-300" (use the unit or id of one of your stores).'),
    ]
    with pytest.raises(ImportRefused):
        import_apply(seller=shop["seller"], kind="stock", name="s.csv", data=data, acting_user=None)
    assert not Stock.objects.filter(store=stranger).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n  \n", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "The file is not a CSV or XLSX file (it looks binary)."),
        (b"PK\x03\x04garbage", "The file is not a CSV or XLSX file (the XLSX workbook cannot be opened)."),
        (b"\xff\xfeL\x00", "The file is not a CSV or XLSX file (it looks binary)."),
        (b"store,seller_sku,on_hand\n", "The file has a header row but no data rows."),
        (
            b"store,sku,qty\nL1-100,SHIRT,1\n",
            "Wrong columns: a stock file has the columns store, seller_sku, on_hand. "
            "Missing: seller_sku, on_hand. Not expected: sku, qty.",
        ),
    ],
)
def test_import_apply_garbage_file_refused_and_changes_nothing(shop, data, message):
    before = stock_snapshot()

    with pytest.raises(ImportRefused) as refused:
        import_apply(seller=shop["seller"], kind="stock", name="f.csv", data=data, acting_user=None)

    assert refused.value.message == message
    assert stock_snapshot() == before


def test_import_apply_zip_that_is_not_a_workbook_refused(shop):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")

    with pytest.raises(ImportRefused) as refused:
        import_apply(seller=shop["seller"], kind="stock", name="f.xlsx", data=buffer.getvalue(), acting_user=None)

    assert refused.value.message == "The file is not a CSV or XLSX file (the XLSX workbook cannot be opened)."
    assert Stock.objects.get(listing=shop["shirt"]).on_hand == 5


def test_import_apply_file_over_size_limit_refused(shop, settings, monkeypatch):
    monkeypatch.setattr("retailers.importing.MAX_FILE_BYTES", 1024 * 1024)
    data = b"store,seller_sku,on_hand\n" + b"L1-100,SHIRT,1\n" * 80_000

    with pytest.raises(ImportRefused) as refused:
        import_apply(seller=shop["seller"], kind="stock", name="f.csv", data=data, acting_user=None)

    assert refused.value.message == "The file is larger than 1 MB; split it into smaller files."
    assert Stock.objects.get(listing=shop["shirt"]).on_hand == 5


def test_import_apply_listings_creates_updates_and_leaves_unchanged(shop):
    header = "seller_sku,title,category,weight_grams,size_class,hazmat,marketplace_item_id\n"
    shirt = shop["shirt"]
    data = csv_bytes(
        header
        + f"SHIRT,{shirt.title},{shirt.category},{shirt.weight_grams},{shirt.size_class},no,\n"
        + "HAT,Sun hat,apparel,150,small,no,MP-1\n"
        + "LAMP,Desk lamp,home,2000,medium,yes,\n"
    )

    EligibilityRequest.objects.all().delete()

    report = import_apply(seller=shop["seller"], kind="listings", name="l.csv", data=data, acting_user=None)

    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    hat = Listing.objects.get(seller=shop["seller"], seller_sku="HAT")
    lamp = Listing.objects.get(seller=shop["seller"], seller_sku="LAMP")
    assert (hat.title, hat.weight_grams, hat.marketplace_item_id) == ("Sun hat", 150, "MP-1")
    assert (lamp.category, lamp.size_class, lamp.hazmat) == ("home", "medium", True)
    assert requested_listings() == sorted([hat.pk, lamp.pk])


def test_import_preview_listings_row_errors(shop):
    header = "seller_sku,title,category,weight_grams,size_class,hazmat,marketplace_item_id\n"
    data = csv_bytes(header + ",T,c,0,huge,maybe,\nHAT,Hat,apparel,10,small,no,\nHAT,Hat,apparel,10,small,no,\n")

    report = import_preview(seller=shop["seller"], kind="listings", name="l.csv", data=data)

    assert report.errors == [
        (
            2,
            'seller_sku is required; weight_grams must be a whole number of at least 1, got "0"; '
            'size_class must be one of small, medium, large, oversize, got "huge"; '
            'hazmat must be yes or no, got "maybe".',
        ),
        (4, "seller_sku HAT already appears in row 3."),
    ]
    assert Listing.objects.filter(seller=shop["seller"]).count() == 2


def test_import_apply_listings_blank_size_and_hazmat_keep_an_existing_listings_values(shop):
    fuel = make_listing(seller=shop["seller"], seller_sku="FUEL", size_class="oversize", hazmat=True)
    header = "seller_sku,title,category,weight_grams,size_class,hazmat,marketplace_item_id\n"
    data = csv_bytes(header + "FUEL,Camping fuel 1 l,sports,900,,,\nNEW,New cap,apparel,100,,,\n")

    report = import_apply(seller=shop["seller"], kind="listings", name="l.csv", data=data, acting_user=None)

    assert (report.created, report.updated) == (1, 1)
    fuel.refresh_from_db()
    new = Listing.objects.get(seller=shop["seller"], seller_sku="NEW")
    assert (fuel.title, fuel.size_class, fuel.hazmat) == ("Camping fuel 1 l", "oversize", True)
    assert (new.size_class, new.hazmat) == ("small", False)
