"""The sweeper of the eligibility outbox (EligibilityRequest rows written by
retailers.eligibility_hooks): claims a batch of rows, recomputes them in one
eligibility_recompute call and deletes them in the transaction of the recompute's writes. A
worker that dies mid-sweep rolls back both, so the rows wait for the next sweep (at least once;
the recompute is idempotent)."""

from django.db import connection, transaction

from retailers.eligibility_sql import eligibility_recompute, one_recompute_at_a_time
from retailers.models import EligibilityRequest
from retailers.models import EligibilityRequestKind as Kind

BATCH = 500
MAX_BATCHES = 20
# Listing requests (what the API intake and stock edits write) are swept apart from store and mall
# requests: a writer upserting a request the sweep holds waits for the sweep's commit, and a
# listing batch's recompute is short, while a mall's (driver supply) covers all its listings.
_GROUPS = ((Kind.LISTING,), (Kind.STORE, Kind.MALL))


def _claim_and_delete(*, kinds: tuple[int, ...], limit: int) -> list[tuple[int, int]]:
    """(kind, object id) of up to `limit` rows of these kinds, deleted in the current
    transaction. On PostgreSQL, after the recompute lock (eligibility_sql.RECOMPUTE_LOCK), rows a writer not yet
    committed holds are skipped (SKIP LOCKED: its change is not visible yet, the next sweep takes
    them); elsewhere (SQLite, one writer at a time) each row is taken by a conditional delete, so
    two sweepers never both take one."""
    # One batch's claim and recompute at a time: a second sweeper waits, then claims what is left.
    one_recompute_at_a_time()
    if connection.vendor == "postgresql":
        table = EligibilityRequest._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN ("  # noqa: S608 - the model's table
                f" SELECT id FROM {table} WHERE kind = ANY(%s) ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING kind, object_id",
                [[int(kind) for kind in kinds], limit],
            )
            return [(kind, object_id) for kind, object_id in cursor.fetchall()]
    pending = EligibilityRequest.objects.filter(kind__in=kinds).order_by("pk")
    rows = list(pending.values_list("pk", "kind", "object_id")[:limit])
    return [(kind, object_id) for pk, kind, object_id in rows if EligibilityRequest.objects.filter(pk=pk).delete()[0]]


def _run_batch(*, kinds: tuple[int, ...], limit: int) -> int:
    with transaction.atomic():
        claimed = _claim_and_delete(kinds=kinds, limit=limit)
        if claimed:
            ids: dict[int, list[int]] = {Kind.LISTING: [], Kind.STORE: [], Kind.MALL: []}
            for kind, object_id in claimed:
                ids[kind].append(object_id)
            eligibility_recompute(listing_ids=ids[Kind.LISTING], store_ids=ids[Kind.STORE], mall_ids=ids[Kind.MALL])
    return len(claimed)


def eligibility_requests_run(*, limit: int = BATCH, max_batches: int = MAX_BATCHES) -> int:
    """Recomputes and deletes pending requests, `limit` rows per transaction, listing requests
    first, then store and mall requests, each until fewer than `limit` were left or
    `max_batches` ran (the next sweep takes the rest). Must run outside a transaction. Returns
    how many request rows were processed."""
    done = 0
    for kinds in _GROUPS:
        for _ in range(max_batches):
            taken = _run_batch(kinds=kinds, limit=limit)
            done += taken
            if taken < limit:
                break
    return done
