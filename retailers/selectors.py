"""Reads the store pages need, already scoped to one store."""

import datetime as dt
import hashlib
from dataclasses import dataclass

from retailers.models import StaffRole, Store, StoreEvent, StoreHours, Weekday

_EVENT_TITLES = {
    "store.applied": "Applied to join Mallrun",
    "store.added": "Added by Mallrun",
    "store.approved": "Application approved",
    "store.onboarding_started": "Onboarding started",
    "store.paused": "Paused same-day",
    "store.resumed": "Resumed same-day",
    "store.settings_changed": "Changed settings",
    "store.went_live": "Went live",
    "store.rejected": "Rejected by Mallrun",
    "store.suspended": "Suspended by Mallrun",
    "store.reinstated": "Reinstated by Mallrun",
    "store.agreement_accepted": "Accepted the program agreement",
    "store.training_order_created": "Started a training order",
    "store.training_driver_called": "Called the demo driver",
    "store.staff_invited": "Invited a team member",
    "store.staff_role_changed": "Changed a team member's role",
    "store.staff_deactivated": "Deactivated a team member",
    "stock.changed": "Changed stock",
    "stock.imported": "Imported stock",
}


def event_title(type: str) -> str:
    """What a store event is called on the store's pages and in the admin."""
    return _EVENT_TITLES.get(type, type)


_SETTING_NAMES = {
    "same_day_cutoff": "same-day cutoff",
    "prep_sla_minutes": "prep time (minutes)",
    "hourly_capacity": "hourly capacity (orders an hour)",
    "pickup_instructions": "pickup instructions",
    "sku": "SKU",
}


# Event data kept for the record but meaningless on the store's page.
_HIDDEN_DATA = frozenset({"user_id", "automatic", "new_account", "application"})


@dataclass(frozen=True)
class StoreEventRow:
    event: StoreEvent
    title: str
    details: list[str]


def _said(key: str, value) -> str:
    """A recorded value as the store's pages say it: roles by their names."""
    if key in {"role", "from", "to"} and value in StaffRole.values:
        return StaffRole(value).label.lower()
    return str(value)


def _hours_said(value: str) -> str:
    if value == "closed":
        return "closed"
    opens, _, closes = str(value).partition("-")
    if opens and opens == closes:
        return "open around the clock"  # as the hours table says it
    return str(value).replace("-", "–")


def _event_details(event: StoreEvent) -> list[str]:
    details = []
    data = dict(event.data or {})
    if "from" in data and "to" in data:  # a change of one value: a role, a stock level
        what = "on hand" if event.type == "stock.changed" else "role"
        details.append(f"{what}: {_said('from', data.pop('from'))} → {_said('to', data.pop('to'))}")
    for key, value in data.items():
        if key in _HIDDEN_DATA:
            continue
        if key.startswith("hours."):
            day = Weekday(int(key.removeprefix("hours."))).label
            details.append(f"{day}: {_hours_said(value)}")
        elif key == "pickup_instructions":
            details.append("pickup instructions rewritten")
        else:
            details.append(f"{_SETTING_NAMES.get(key, key)}: {_said(key, value)}")
    return details


def store_event_list_for_staff(*, store: Store, limit: int = 20) -> list[StoreEventRow]:
    """The store's latest events, newest first, with a line per change for the history table."""
    events = StoreEvent.objects.filter(store=store).select_related("actor").order_by("-at", "-pk")[:limit]
    return [
        StoreEventRow(event=event, title=event_title(event.type), details=_event_details(event)) for event in events
    ]


def describe_hours(row: StoreHours | None) -> str:
    if row is None:
        return "Closed"
    if row.around_the_clock:
        return "Open around the clock"
    span = f"{row.opens_at:%H:%M}–{row.closes_at:%H:%M}"
    return f"{span} (next day)" if row.closes_at < row.opens_at else span


def store_settings_version(*, store: Store) -> str:
    """A short fingerprint of the settings the settings form edits (as stored now): the form
    carries the one it showed, so a save from a page loaded before someone else's save is
    refused instead of quietly putting back the values that page showed."""
    hours = StoreHours.objects.filter(store=store).order_by("weekday").values_list("weekday", "opens_at", "closes_at")
    text = repr(
        (store.same_day_cutoff, store.prep_sla_minutes, store.hourly_capacity, store.pickup_instructions, list(hours))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def store_hours_list(*, store: Store) -> list[tuple[str, str]]:
    """Every weekday with its opening hours as people read them."""
    rows = {row.weekday: row for row in StoreHours.objects.filter(store=store)}
    return [(day.label, describe_hours(rows.get(day.value))) for day in Weekday]


# --- Same-day eligibility feed (issue 5; served by the marketplace API) -------------------------

FEED_PAGE_MAX = 1000


@dataclass(frozen=True)
class EligibilityFeedPage:
    items: list[dict]
    next_cursor: str | None


def _feed_cursor(computed_at, pk: int) -> str:
    import base64

    raw = f"{computed_at.astimezone(dt.UTC).isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _feed_cursor_parse(cursor: str) -> tuple:
    import base64
    import binascii

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, pk = raw.split("|")
        parsed = dt.datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError
        # The feed hands out UTC times and row ids: a time outside the years 1 to 9999 in
        # UTC, or an id past bigint, is not one of its cursors (and SQLite cannot take either).
        parsed.astimezone(dt.UTC)
        if not 0 <= int(pk) < 2**63:
            raise ValueError
        return parsed, int(pk)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error) as error:
        raise ValueError("cursor is not one this feed handed out") from error


def eligibility_feed_page(
    *, mall_slug: str, changed_since: dt.datetime | None, cursor: str | None, limit: int = FEED_PAGE_MAX
) -> EligibilityFeedPage:
    """One page of a mall's eligibility results in the shape of marketplace-api.md, oldest change
    first, keyset-paged on (computed_at, id): a row that changes during a walk moves to the end
    and is read again, never skipped. `changed_since` keeps rows with computed_at ≥ it.

    Raises Mall.DoesNotExist for an unknown mall and ValueError for a malformed cursor or limit.
    """
    from django.db import connection
    from django.db.models import BooleanField
    from django.db.models.expressions import RawSQL

    from retailers.eligibility import codes_from_bits
    from retailers.models import EligibilityResult, Mall

    if not 1 <= limit <= FEED_PAGE_MAX:
        raise ValueError(f"limit must be between 1 and {FEED_PAGE_MAX}")
    mall = Mall.objects.get(slug=mall_slug)
    rows = EligibilityResult.objects.filter(mall=mall)
    if changed_since is not None:
        rows = rows.filter(computed_at__gte=changed_since)
    if cursor:
        after_at, after_pk = _feed_cursor_parse(cursor)
        # A row-value comparison seeks straight into the (mall, computed_at, id) index; the
        # equivalent OR would rescan every row sharing the cursor's computed_at on each page.
        table = EligibilityResult._meta.db_table
        rows = rows.filter(
            RawSQL(  # noqa: S611 -- the table name is ours; the values are parameters
                f'("{table}"."computed_at", "{table}"."id") > (%s, %s)',
                [connection.ops.adapt_datetimefield_value(after_at), after_pk],
                output_field=BooleanField(),
            )
        )
    page = list(
        rows.order_by("computed_at", "pk").values_list(
            "pk",
            "listing__seller__marketplace_seller_id",
            "listing__seller_sku",
            "eligible",
            "reason_bits",
            "eligible_until",
            "computed_at",
        )[:limit]
    )
    tz = mall.tz
    items = [
        {
            "seller_id": seller_id,
            "sku": sku,
            "mall": mall.slug,
            "eligible": eligible,
            "reasons": codes_from_bits(bits),
            "eligible_until": until.astimezone(tz).isoformat() if until else None,
            "computed_at": computed_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        for _, seller_id, sku, eligible, bits, until, computed_at in page
    ]
    next_cursor = _feed_cursor(page[-1][6], page[-1][0]) if len(page) == limit else None
    return EligibilityFeedPage(items=items, next_cursor=next_cursor)
