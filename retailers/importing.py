"""Bulk import of a seller's listings and stock from CSV or XLSX.

Hand-written rather than django-import-export: the stock file is up to 100,000 rows, and
import-export validates and saves row by row through model instances (minutes, not seconds). Here
a file is parsed once, checked against two dicts loaded up front (the seller's listings and stock),
and applied with one bulk upsert per batch inside a single transaction.

`import_preview` is the dry run (reads only); `import_apply` re-validates and writes everything or
nothing. A file-level problem raises ImportRefused with a message for the user; row problems are
listed in the report and make `import_apply` refuse too.
"""

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from portal.errors import ActionRefused
from retailers.eligibility_hooks import eligibility_after_stock_change
from retailers.models import (
    ImportJob,
    ImportJobStatus,
    Listing,
    Seller,
    SizeClass,
    Stock,
    Store,
    StoreEvent,
    normalize_category,
)
from retailers.stock_services import MAX_ON_HAND, units

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
PREVIEW_ROWS = 20
MAX_REPORTED_ERRORS = 200
BATCH = 5_000

LISTING_COLUMNS = ("seller_sku", "title", "category", "weight_grams", "size_class", "hazmat", "marketplace_item_id")
STOCK_COLUMNS = ("store", "seller_sku", "on_hand")
COLUMNS = {"listings": LISTING_COLUMNS, "stock": STOCK_COLUMNS}
TRUE_WORDS = {"1", "true", "yes", "y"}
FALSE_WORDS = {"", "0", "false", "no", "n"}

Progress = Callable[[int, int], None]  # (rows checked, rows in file)


class ImportRefused(ActionRefused):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="validation")


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0
    preview: list[dict] = field(default_factory=list)
    applied: bool = False
    # What an apply writes, keyed for the upsert; not shown to users.
    changes: list[tuple] = field(default_factory=list, repr=False)
    store_counts: dict[int, dict[str, int]] = field(default_factory=dict, repr=False)

    def add_error(self, row: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((row, message))

    def summary(self) -> dict:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "error_count": self.error_count,
            "errors": [list(e) for e in self.errors],
            "preview": self.preview,
            "applied": self.applied,
        }


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(*, name: str, data: bytes, kind: str) -> list[list[str]]:
    """The file's data rows as strings, in COLUMNS[kind] order. Raises ImportRefused for anything
    that is not a readable CSV/XLSX with exactly the expected columns."""
    if kind not in COLUMNS:
        raise ImportRefused(f"Unknown import kind {kind!r}.")
    if len(data) > MAX_FILE_BYTES:
        raise ImportRefused(
            f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it into smaller files."
        )
    if not data.strip():
        raise ImportRefused("The file is empty.")
    raw = _xlsx_rows(data) if data[:4] == b"PK\x03\x04" else _csv_rows(data)
    header = next(raw, None)
    if header is None:
        raise ImportRefused("The file is empty.")
    header = [_cell(h).lower() for h in header]
    while header and header[-1] == "":
        header.pop()
    expected = COLUMNS[kind]
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    if missing or unexpected or len(header) != len(set(header)):
        parts = [f"Wrong columns: a {kind} file has the columns {', '.join(expected)}."]
        if missing:
            parts.append(f"Missing: {', '.join(missing)}.")
        if unexpected:
            parts.append(f"Not expected: {', '.join(unexpected)}.")
        if len(header) != len(set(header)) and not (missing or unexpected):
            parts.append("A column appears twice.")
        raise ImportRefused(" ".join(parts))
    order = [header.index(c) for c in expected]
    rows = []
    for raw_row in raw:
        cells = [_cell(v) for v in raw_row]
        if not any(cells):
            continue
        cells += [""] * (len(header) - len(cells))
        rows.append([cells[i] for i in order])
        if len(rows) > MAX_ROWS:
            raise ImportRefused(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
    if not rows:
        raise ImportRefused("The file has a header row but no data rows.")
    return rows


def _csv_rows(data: bytes):
    if b"\x00" in data[:65536]:
        raise ImportRefused("The file is not a CSV or XLSX file (it looks binary).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("The file is not a CSV or XLSX file: a CSV file must be UTF-8 text.") from None
    try:
        return iter(list(csv.reader(io.StringIO(text, newline=""))))
    except csv.Error as exc:
        raise ImportRefused(f"The CSV file cannot be read: {exc}.") from None


def _xlsx_rows(data: bytes):
    import openpyxl

    # ParseError (a SyntaxError) comes from a damaged sheet inside an otherwise valid zip.
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = list(book.worksheets[0].iter_rows(values_only=True)) if book.worksheets else []
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, SyntaxError):
        raise ImportRefused("The file is not a CSV or XLSX file (the XLSX workbook cannot be opened).") from None
    return iter(rows)


def _whole_number(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _check_listings(*, seller: Seller, rows: list[list[str]], report: ImportReport, progress: Progress | None) -> None:
    existing = {
        row[0]: row
        for row in Listing.objects.filter(seller=seller).values_list(
            "seller_sku", "title", "category", "weight_grams", "size_class", "hazmat", "marketplace_item_id", "pk"
        )
    }
    sizes = set(SizeClass.values)
    seen: dict[str, int] = {}
    limits = {"seller_sku": 60, "title": 200, "category": 60, "marketplace_item_id": 40}
    for n, (sku, title, category, weight, size, hazmat, item_id) in enumerate(rows, start=2):
        if progress and n % BATCH == 0:
            progress(n, len(rows))
        problems = []
        for name, value in zip(("seller_sku", "title", "category"), (sku, title, category), strict=True):
            if not value:
                problems.append(f"{name} is required")
        for name, value in (
            ("seller_sku", sku),
            ("title", title),
            ("category", category),
            ("marketplace_item_id", item_id),
        ):
            if len(value) > limits[name]:
                problems.append(f"{name} is longer than {limits[name]} characters")
        grams = _whole_number(weight)
        if grams is None or grams < 1:
            problems.append(f'weight_grams must be a whole number of at least 1, got "{weight}"')
        before = existing.get(sku)
        # A blank size or hazmat cell keeps what an existing listing has (a blank must not turn a
        # hazmat or oversize listing same-day eligible); a new listing gets small and no.
        size = size.lower() or (before[4] if before else SizeClass.SMALL)
        if size not in sizes:
            problems.append(f'size_class must be one of {", ".join(SizeClass.values)}, got "{size}"')
        flag = hazmat.lower() or (("yes" if before[5] else "no") if before else "no")
        if flag not in TRUE_WORDS | FALSE_WORDS:
            problems.append(f'hazmat must be yes or no, got "{hazmat}"')
        if sku and sku in seen:
            problems.append(f"seller_sku {sku} already appears in row {seen[sku]}")
        if problems:
            report.add_error(n, "; ".join(problems) + ".")
            continue
        seen[sku] = n
        values = (sku, title, normalize_category(category), grams, size, flag in TRUE_WORDS, item_id)
        if before is None:
            report.created += 1
            action = "create"
        elif tuple(before[:7]) == values:
            report.unchanged += 1
            continue
        else:
            report.updated += 1
            action = "update"
        report.changes.append(values)
        if len(report.preview) < PREVIEW_ROWS:
            report.preview.append({"row": n, "action": action, **dict(zip(LISTING_COLUMNS, values, strict=True))})


def _check_stock(*, seller: Seller, rows: list[list[str]], report: ImportReport, progress: Progress | None) -> None:
    stores = list(Store.objects.filter(seller=seller).values_list("pk", "unit", "name"))
    by_id = {str(pk): pk for pk, _, _ in stores}
    by_unit: dict[str, list[int]] = {}
    for pk, unit, _ in stores:
        by_unit.setdefault(unit.lower(), []).append(pk)
    names = {pk: name for pk, _, name in stores}
    listings = dict(Listing.objects.filter(seller=seller).values_list("seller_sku", "pk"))
    current = {
        (store_id, listing_id): (on_hand, reserved)
        for store_id, listing_id, on_hand, reserved in Stock.objects.filter(store__seller=seller).values_list(
            "store_id", "listing_id", "on_hand", "reserved"
        )
    }
    seen: dict[tuple[int, int], int] = {}
    for n, (store_ref, sku, on_hand_text) in enumerate(rows, start=2):
        if progress and n % BATCH == 0:
            progress(n, len(rows))
        problems = []
        store_id = by_id.get(store_ref)
        if store_id is None:
            matches = by_unit.get(store_ref.lower(), [])
            if len(matches) > 1:
                problems.append(f'unit "{store_ref}" matches {len(matches)} of your stores; use the store id')
            elif matches:
                store_id = matches[0]
            else:
                problems.append(f'unknown store "{store_ref}" (use the unit or id of one of your stores)')
        listing_id = listings.get(sku)
        if listing_id is None:
            problems.append(f'unknown seller_sku "{sku}"')
        on_hand = _whole_number(on_hand_text)
        if on_hand is None:
            problems.append(f'on_hand must be a whole number, got "{on_hand_text}"')
        elif on_hand < 0:
            problems.append(f"on_hand must not be negative, got {on_hand}")
        elif on_hand > MAX_ON_HAND:
            problems.append(f"on_hand must be at most {MAX_ON_HAND:,}, got {on_hand}")
        if store_id is not None and listing_id is not None:
            key = (store_id, listing_id)
            if key in seen:
                problems.append(f"{sku} at {store_ref} already appears in row {seen[key]}")
            elif on_hand is not None and 0 <= on_hand < current.get(key, (0, 0))[1]:
                problems.append(f"on_hand {on_hand} is below the {units(current[key][1])} reserved by open orders")
        if problems:
            report.add_error(n, "; ".join(problems) + ".")
            continue
        seen[key] = n
        counts = report.store_counts.setdefault(store_id, {"created": 0, "updated": 0, "unchanged": 0})
        before = current.get(key)
        if before is None:
            action = "created"
        elif before[0] == on_hand:
            report.unchanged += 1
            counts["unchanged"] += 1
            continue
        else:
            action = "updated"
        setattr(report, action, getattr(report, action) + 1)
        counts[action] += 1
        report.changes.append((store_id, listing_id, on_hand))
        if len(report.preview) < PREVIEW_ROWS:
            report.preview.append(
                {
                    "row": n,
                    "action": action.removesuffix("d"),
                    "store": names[store_id],
                    "seller_sku": sku,
                    "on_hand": on_hand,
                    "before": before[0] if before else None,
                }
            )


def import_preview(
    *, seller: Seller, kind: str, name: str, data: bytes, progress: Progress | None = None
) -> ImportReport:
    """The dry run: what an apply of this file would do, with every row error. Writes nothing."""
    rows = read_rows(name=name, data=data, kind=kind)
    report = ImportReport(kind=kind, rows=len(rows))
    check = _check_listings if kind == "listings" else _check_stock
    check(seller=seller, rows=rows, report=report, progress=progress)
    return report


def import_apply(
    *,
    seller: Seller,
    kind: str,
    name: str,
    data: bytes,
    acting_user: AbstractBaseUser | None,
    progress: Progress | None = None,
) -> ImportReport:
    """Applies the whole file or nothing: any row error refuses the file.

    Side effects (one transaction): listings or stock rows created/updated (set-based bulk
    upserts); for stock, one `stock.imported` store event per store in the file, with its counts;
    the eligibility recompute of the touched listings queued after commit.
    """
    with transaction.atomic():
        report = import_preview(seller=seller, kind=kind, name=name, data=data, progress=progress)
        if report.error_count:
            raise ImportRefused(
                f"Nothing was imported: {report.error_count} "
                f"{'row has' if report.error_count == 1 else 'rows have'} errors. Fix them and upload the file again."
            )
        try:
            with transaction.atomic():
                touched = _write_listings(seller, report) if kind == "listings" else _write_stock(report)
        except IntegrityError:
            raise ImportRefused(
                "Nothing was imported: the data changed while the file was being applied "
                "(e.g. an order reserved stock). Upload the file again."
            ) from None
        if kind == "stock":
            _record_events(report=report, acting_user=acting_user)
        eligibility_after_stock_change(listing_ids=touched)
        report.applied = True
    return report


def _write_listings(seller: Seller, report: ImportReport) -> list[int]:
    objs = [
        Listing(
            seller=seller,
            seller_sku=sku,
            title=title,
            category=category,
            weight_grams=grams,
            size_class=size,
            hazmat=hazmat,
            marketplace_item_id=item_id,
        )
        for sku, title, category, grams, size, hazmat, item_id in report.changes
    ]
    for start in range(0, len(objs), BATCH):
        Listing.objects.bulk_create(
            objs[start : start + BATCH],
            update_conflicts=True,
            unique_fields=["seller", "seller_sku"],
            update_fields=["title", "category", "weight_grams", "size_class", "hazmat", "marketplace_item_id"],
        )
    skus = [change[0] for change in report.changes]
    ids: list[int] = []
    for start in range(0, len(skus), BATCH):
        ids += Listing.objects.filter(seller=seller, seller_sku__in=skus[start : start + BATCH]).values_list(
            "pk", flat=True
        )
    return ids


def _write_stock(report: ImportReport) -> list[int]:
    now = timezone.now()
    if connection.vendor == "postgresql":
        _copy_upsert_stock(report.changes, now)
        return sorted({listing_id for _, listing_id, _ in report.changes})
    objs = [
        Stock(store_id=store_id, listing_id=listing_id, on_hand=on_hand, reserved=0, updated_at=now)
        for store_id, listing_id, on_hand in report.changes
    ]
    for start in range(0, len(objs), BATCH):
        Stock.objects.bulk_create(
            objs[start : start + BATCH],
            update_conflicts=True,
            unique_fields=["store", "listing"],
            update_fields=["on_hand", "updated_at"],
        )
    return sorted({listing_id for _, listing_id, _ in report.changes})


def _copy_upsert_stock(changes: list[tuple[int, int, int]], now) -> None:
    """PostgreSQL: COPY the rows into a temp table, then one INSERT ... ON CONFLICT (several
    times faster than multi-row INSERTs for 100,000 rows)."""
    table = Stock._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE import_stock (store_id bigint, listing_id bigint, on_hand integer) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY import_stock (store_id, listing_id, on_hand) FROM STDIN") as copy:
            for row in changes:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} (store_id, listing_id, on_hand, reserved, updated_at) "  # noqa: S608 (our table name)
            "SELECT store_id, listing_id, on_hand, 0, %s FROM import_stock "
            "ON CONFLICT (store_id, listing_id) "
            "DO UPDATE SET on_hand = EXCLUDED.on_hand, updated_at = EXCLUDED.updated_at",
            [now],
        )
        cursor.execute("DROP TABLE import_stock")


def _record_events(*, report: ImportReport, acting_user: AbstractBaseUser | None) -> None:
    now = timezone.now()
    label = "system" if acting_user is None else (acting_user.get_full_name() or acting_user.get_username())
    StoreEvent.objects.bulk_create(
        StoreEvent(
            store_id=store_id,
            type="stock.imported",
            actor=acting_user if acting_user is not None and acting_user.is_authenticated else None,
            actor_label=label,
            at=now,
            data=counts,
        )
        for store_id, counts in sorted(report.store_counts.items())
    )


def import_row_estimate(data: bytes) -> int:
    """Rows in a CSV file, roughly (an XLSX counts by size): decides whether a job runs in the
    request or in a Celery task."""
    if data[:4] == b"PK\x03\x04":
        return len(data) // 20
    return max(data.count(b"\n") - 1, 0)


def import_job_create(
    *, seller: Seller, kind: str, dry_run: bool, file_name: str, data: bytes, acting_user: AbstractBaseUser | None
) -> ImportJob:
    """Stores an uploaded file as a queued job. Side effects: one ImportJob row."""
    if kind not in COLUMNS:
        raise ImportRefused(f"Unknown import kind {kind!r}.")
    if len(data) > MAX_FILE_BYTES:
        raise ImportRefused(
            f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it into smaller files."
        )
    return ImportJob.objects.create(
        seller=seller,
        kind=kind,
        dry_run=dry_run,
        file_name=file_name[:200],
        data=data,
        created_by=acting_user if acting_user is not None and acting_user.is_authenticated else None,
    )


def import_job_run(*, job_id: int) -> ImportJob:
    """Runs a queued job: the dry run, then (unless it is a preview) the apply. Progress is saved
    outside the apply's transaction so a polling page sees it move.

    Side effects: ImportJob status/progress/result/message; those of import_apply.
    """
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.QUEUED).update(status=ImportJobStatus.RUNNING)
    job = ImportJob.objects.select_related("seller", "created_by").get(pk=job_id)
    if not claimed:
        return job
    last = [0]

    def progress(done: int, total: int) -> None:
        percent = min(99, done * (100 if job.dry_run else 90) // max(total, 1))
        if percent > last[0]:
            last[0] = percent
            ImportJob.objects.filter(pk=job_id).update(progress=percent)

    data = bytes(job.data)
    try:
        report = import_preview(seller=job.seller, kind=job.kind, name=job.file_name, data=data, progress=progress)
        if not job.dry_run and not report.error_count:
            report = import_apply(
                seller=job.seller, kind=job.kind, name=job.file_name, data=data, acting_user=job.created_by
            )
        elif not job.dry_run:
            job.message = (
                f"Nothing was imported: {report.error_count} "
                f"{'row has' if report.error_count == 1 else 'rows have'} errors. Fix them and upload the file again."
            )
        job.result = report.summary()
        job.status = ImportJobStatus.FAILED if job.message else ImportJobStatus.SUCCEEDED
    except ImportRefused as refused:
        job.status, job.message = ImportJobStatus.FAILED, refused.message
    job.progress = 100
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "progress", "message", "result", "finished_at"])
    return job
