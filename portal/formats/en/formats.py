"""English date formats with the time zone's abbreviation on every date and time Django writes
out by itself (the admin's lists and read-only fields): a time is never shown without saying in
which zone it is. Pages that show a mall's local time write it with portal.localtime instead."""

from django.conf.locale.en.formats import *  # noqa: F403 - every other English format as Django has it

DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
