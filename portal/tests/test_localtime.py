"""Local days (portal.localtime): where a day starts and ends in a zone, clock changes included."""

import datetime as dt
import zoneinfo

import pytest

from portal.localtime import local_day_bounds

UTC = dt.UTC


@pytest.mark.parametrize(
    ("zone", "now", "today", "start", "end"),
    [
        # An ordinary day in Las Vegas: 24 hours from local midnight (08:00 UTC in winter).
        (
            "America/Los_Angeles",
            dt.datetime(2026, 11, 24, 7, 59, tzinfo=UTC),
            dt.date(2026, 11, 23),
            dt.datetime(2026, 11, 23, 8, tzinfo=UTC),
            dt.datetime(2026, 11, 24, 8, tzinfo=UTC),
        ),
        # The US spring switch (2 a.m.): a 23-hour day, from PST midnight to PDT midnight.
        (
            "America/Los_Angeles",
            dt.datetime(2026, 3, 8, 20, tzinfo=UTC),
            dt.date(2026, 3, 8),
            dt.datetime(2026, 3, 8, 8, tzinfo=UTC),
            dt.datetime(2026, 3, 9, 7, tzinfo=UTC),
        ),
        # Phoenix keeps no daylight saving: 24 hours on the same day.
        (
            "America/Phoenix",
            dt.datetime(2026, 3, 8, 20, tzinfo=UTC),
            dt.date(2026, 3, 8),
            dt.datetime(2026, 3, 8, 7, tzinfo=UTC),
            dt.datetime(2026, 3, 9, 7, tzinfo=UTC),
        ),
        # Havana skips midnight itself in spring: the day starts at 01:00 CDT, the first local time.
        (
            "America/Havana",
            dt.datetime(2026, 3, 8, 17, tzinfo=UTC),
            dt.date(2026, 3, 8),
            dt.datetime(2026, 3, 8, 5, tzinfo=UTC),
            dt.datetime(2026, 3, 9, 4, tzinfo=UTC),
        ),
        # ... and reads midnight twice in autumn: the day starts at the first and lasts 25 hours.
        (
            "America/Havana",
            dt.datetime(2026, 11, 1, 17, tzinfo=UTC),
            dt.date(2026, 11, 1),
            dt.datetime(2026, 11, 1, 4, tzinfo=UTC),
            dt.datetime(2026, 11, 2, 5, tzinfo=UTC),
        ),
    ],
)
def test_local_day_bounds_start_and_end_at_local_midnight_across_clock_changes(zone, now, today, start, end):
    assert local_day_bounds(now, zoneinfo.ZoneInfo(zone)) == (today, start, end)
