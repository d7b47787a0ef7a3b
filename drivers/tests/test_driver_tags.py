"""The driver pages' time filters: a time in the mall's zone with its day when not today (clock), and
when a store said an order would be packed (ready_about)."""

import datetime as dt
import zoneinfo

import time_machine
from django.utils import timezone

from drivers.templatetags.driver_tags import clock, ready_about

VEGAS = zoneinfo.ZoneInfo("America/Los_Angeles")


@time_machine.travel(dt.datetime(2026, 11, 24, 6, 50, tzinfo=dt.UTC), tick=False)  # Mon 10:50 PM in Vegas
def test_clock_names_the_day_of_a_time_that_is_not_today_in_the_malls_zone():
    with timezone.override(VEGAS):
        assert clock(dt.datetime(2026, 11, 24, 7, 30, tzinfo=dt.UTC)) == "11:30 PM"
        assert clock(dt.datetime(2026, 11, 24, 9, 39, tzinfo=dt.UTC)) == "1:39 AM tomorrow"
        assert clock(dt.datetime(2026, 11, 26, 18, 0, tzinfo=dt.UTC)) == "Thu 10:00 AM"
        assert clock(None) == ""


@time_machine.travel(dt.datetime(2026, 11, 24, 12, 12, tzinfo=dt.UTC), tick=False)  # 4:12 AM in Vegas
def test_ready_about_says_a_packing_time_already_past_was_due_not_about():
    with timezone.override(VEGAS):
        assert ready_about(dt.datetime(2026, 11, 24, 12, 20, tzinfo=dt.UTC)) == "ready about 4:20 AM"
        assert ready_about(dt.datetime(2026, 11, 24, 12, 9, tzinfo=dt.UTC)) == "was due ready at 4:09 AM"
        assert ready_about(None) == ""
