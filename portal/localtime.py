"""Local times: where a day begins and ends in a mall's or a market's time zone, and a moment
written in one. Pure functions, shared by the store board (today's orders), driver documents
(valid through a local date) and the admin pages (times in the mall's zone)."""

import datetime as dt
import zoneinfo

from django.utils.dateformat import format as date_format

# "Fri Nov 20 2026, 4:05 PM PST": the admin's dates and times in a mall's zone.
ADMIN_MOMENT = "D M j Y, g:i A T"


def in_zone(moment: dt.datetime | None, tz: zoneinfo.ZoneInfo, format: str = ADMIN_MOMENT) -> str:
    """`moment` on the clock of `tz` (a Django date format, with the zone's abbreviation where
    the format has T); "—" for none."""
    return date_format(moment.astimezone(tz), format) if moment else "—"


def clock_with_day(moment: dt.datetime, tz: zoneinfo.ZoneInfo, today: dt.date) -> str:
    """`moment` as a clock time in `tz`, with its day when that is not `today` (a date in `tz`):
    "9:40 PM", "1:39 AM tomorrow", "Thu 10:00 AM". For the board's cards and the driver pages."""
    days = (moment.astimezone(tz).date() - today).days
    if days == 0:
        return in_zone(moment, tz, "g:i A")
    if days == 1:
        return f"{in_zone(moment, tz, 'g:i A')} tomorrow"
    return in_zone(moment, tz, "D g:i A")


def start_of_local_day(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant `day` begins in `tz` (the end of the day before it)."""
    return end_of_local_day(day - dt.timedelta(days=1), tz)


def end_of_local_day(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant `day` ends in `tz`: the next local midnight. Where a clock change lands on
    that midnight (it is skipped, or read twice), the first instant the clock shows a later day."""
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    readings = (midnight.astimezone(dt.UTC), midnight.replace(fold=1).astimezone(dt.UTC))
    return min(instant for instant in readings if instant.astimezone(tz).date() > day)


def local_day_bounds(now: dt.datetime, tz: zoneinfo.ZoneInfo) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """The local date at `now` in `tz`, and the instants it starts and ends (in UTC)."""
    today = now.astimezone(tz).date()
    return today, end_of_local_day(today - dt.timedelta(days=1), tz), end_of_local_day(today, tz)
