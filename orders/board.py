"""The store order board, built so that a poll costs only what changed.

Tablets ask for the board every few seconds. The answer is layered:
1. `poll_is_unchanged` is one query (membership, store, newest order change by index); when the
   version the tablet sends is still current, the view answers 204.
2. Otherwise only light rows (pk, updated_at, status) are read, and each card's HTML comes from
   the cache under (pk, updated_at); only the cards that changed are loaded and rendered.
Cards therefore hold nothing that changes with the clock: deadlines are absolute local times in
<time> elements that static/js/mallrun.js counts down.
"""

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from django.core.cache import cache
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from orders.lifecycle import OPEN, OrderStatus
from orders.models import Order
from orders.selectors import (
    BOARD_COLUMNS,
    board_last_change,
    board_poll_state,
    board_rows,
    local_day_bounds,
    orders_for_cards,
)
from portal.localtime import clock_with_day
from retailers.models import Store

# Bump when the card template changes, so old HTML in a shared cache is not served.
CARD_TEMPLATE_VERSION = 3
CARD_CACHE_SECONDS = 24 * 60 * 60
CARD_TEMPLATE = "store/board_card.html"
_OPEN_MARK = ' aria-current="true"'
_CARD_ROOT = "<article "
S = OrderStatus
_COLUMN_OF = {status: key for key, _, statuses in BOARD_COLUMNS for status in statuses}


def local_time(value: dt.datetime, store: Store) -> str:
    """A time as people at the mall read it, e.g. "2:05 PM"."""
    local = value.astimezone(store.mall.tz)
    return local.strftime("%I:%M %p").lstrip("0")


def iso(value: dt.datetime) -> str:
    """A machine-readable time for <time datetime>: whole seconds, as the HTML spec allows."""
    return value.isoformat(timespec="seconds")


def local_datetime(value: dt.datetime, store: Store) -> str:
    local = value.astimezone(store.mall.tz)
    return f"{local:%a %b} {local.day}, {local_time(value, store)} {local:%Z}"


def _version(
    *, store_id: int, store_updated_at: dt.datetime, last_change: dt.datetime | None, time_zone: str, now: dt.datetime
) -> str:
    today = now.astimezone(zoneinfo.ZoneInfo(time_zone)).date()
    last_micro = int(last_change.timestamp() * 1_000_000) if last_change else 0
    return f"{store_id}-{int(store_updated_at.timestamp() * 1_000_000)}-{last_micro}-{today:%Y%m%d}"


_VERSION_STORE = re.compile(r"(\d{1,18})-")


def board_version_store(version: str) -> int | None:
    """The id of the store a board version (_version) was made for; None for anything else."""
    match = _VERSION_STORE.match(version)
    return int(match.group(1)) if match else None


def board_version(store: Store, *, now: dt.datetime | None = None) -> str:
    """Changes whenever anything the board shows may have changed: the store (pause banner), any
    of its orders, or the local date (the "Done today" column)."""
    return _version(
        store_id=store.pk,
        store_updated_at=store.updated_at,
        last_change=board_last_change(store),
        time_zone=store.mall.time_zone,
        now=now or timezone.now(),
    )


def poll_is_unchanged(*, user, store_id: int | None, since: str, now: dt.datetime | None = None) -> bool:
    """True when the board `since` describes is still current for a store the user works at: the
    answer to most polls, in one query (membership, store and newest order change together)."""
    if store_id is None or not since.startswith(f"{store_id}-"):
        return False
    state = board_poll_state(user=user, store_id=store_id)
    if state is None:
        return False
    store_updated_at, time_zone, last_change = state
    current = _version(
        store_id=store_id,
        store_updated_at=store_updated_at,
        last_change=last_change,
        time_zone=time_zone,
        now=now or timezone.now(),
    )
    return current == since


def _card_key(pk: int, updated_at: dt.datetime, store: Store, today: dt.date) -> str:
    # The mall's date too: a card names the day of a time that is not today.
    return f"board-card:{CARD_TEMPLATE_VERSION}:{store.mall.time_zone}:{today:%Y%m%d}:{pk}:{updated_at.timestamp():.6f}"


def _card_context(order: Order, store: Store, today: dt.date) -> dict:
    is_open = order.status in OPEN
    return {
        "order": order,
        "lines": list(order.lines.all()),
        "status_label": S(order.status).label,
        "is_open": is_open,
        "show_prep": order.status in {S.RECEIVED, S.ACCEPTED, S.PICKING, S.SHORT},
        # A delivery that failed has no deadline left to count down to: it is coming back.
        "show_deliver_by": order.status not in {S.UNDELIVERABLE, S.RETURNING},
        "prep_due_iso": iso(order.prep_due_at),
        "deliver_by_iso": iso(order.deliver_by),
        "prep_due_local": clock_with_day(order.prep_due_at, store.mall.tz, today),
        "deliver_by_local": clock_with_day(order.deliver_by, store.mall.tz, today),
        "changed_local": local_time(order.status_changed_at, store),
    }


def render_cards(orders: list[Order], store: Store, today: dt.date | None = None) -> dict[int, str]:
    """Each order's card; `today` is the mall's date (now's, when not given)."""
    today = today or timezone.now().astimezone(store.mall.tz).date()
    template = get_template(CARD_TEMPLATE)
    return {order.pk: template.render(_card_context(order, store, today)) for order in orders}


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    count: int
    html: SafeString


@dataclass(frozen=True)
class Board:
    version: str
    columns: list[Column]


def build_board(store: Store, *, open_pk: int | None = None, version: str | None = None) -> Board:
    """The board's columns assembled from cached card HTML; `open_pk` is marked aria-current."""
    now = timezone.now()
    version = version or board_version(store, now=now)
    today, day_start, day_end = local_day_bounds(store, now)
    rows = board_rows(store, day_start=day_start, day_end=day_end)
    keys = {row.pk: _card_key(row.pk, row.updated_at, store, today) for row in rows}
    cached = cache.get_many(list(keys.values()))
    missing = [pk for pk, key in keys.items() if key not in cached]
    if missing:
        fresh = render_cards(orders_for_cards(missing), store, today)
        # An order changed between the two reads is rendered newer than its key says; harmless, since
        # its next poll carries a new version and a new key.
        cache.set_many({keys[pk]: html for pk, html in fresh.items()}, CARD_CACHE_SECONDS)
        cached.update({keys[pk]: html for pk, html in fresh.items()})
    by_column: dict[str, list[str]] = {key: [] for key, _, _ in BOARD_COLUMNS}
    for row in rows:
        html = cached.get(keys[row.pk])
        if html is None:
            continue
        if row.pk == open_pk:
            html = html.replace(_CARD_ROOT, _CARD_ROOT + _OPEN_MARK.strip() + " ", 1)
        by_column[_COLUMN_OF[row.status]].append(html)
    columns = [
        # Card HTML comes from our own template, escaped when it was rendered.
        Column(key=key, heading=heading, count=len(by_column[key]), html=mark_safe("".join(by_column[key])))  # noqa: S308
        for key, heading, _ in BOARD_COLUMNS
    ]
    return Board(version=version, columns=columns)
