"""Local days: where a day begins and ends in a mall's or a market's time zone. Pure functions,
shared by the store board (today's orders) and driver documents (valid through a local date)."""

import datetime as dt
import zoneinfo


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
