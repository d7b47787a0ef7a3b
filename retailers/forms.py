"""Validation of what store managers type on the settings page. Forms never write."""

import datetime as dt

from django import forms

from retailers.models import Store, Weekday
from retailers.selectors import store_settings_version

PREP_SLA_MIN = 5
PREP_SLA_MAX = 240
PREP_SLA_MESSAGE = f"Enter a prep time between {PREP_SLA_MIN} and {PREP_SLA_MAX} minutes."
CAPACITY_MIN = 1
CAPACITY_MAX = 500
CAPACITY_MESSAGE = f"Enter an hourly capacity between {CAPACITY_MIN} and {CAPACITY_MAX} orders."
TIME_MESSAGE = "Enter a time as HH:MM, for example 09:30."
PICKUP_MAX = 1000
PAUSE_REASON_MAX = 200


def bounded_int_field(label: str, *, minimum: int, maximum: int, message: str, **kwargs) -> forms.IntegerField:
    """A whole number between minimum and maximum, with one message that says the range for
    every way it can be wrong (blank, not a number, too small, too big)."""
    return forms.IntegerField(
        label=label,
        min_value=minimum,
        max_value=maximum,
        error_messages=dict.fromkeys(("required", "invalid", "min_value", "max_value"), message),
        **kwargs,
    )


def _time_field(label: str, *, required: bool = False) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=required,
        input_formats=["%H:%M", "%H:%M:%S"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": TIME_MESSAGE, "required": "Enter the same-day cutoff time."},
    )


class StoreSettingsForm(forms.Form):
    """Same-day settings and opening hours. Each weekday has `day_<n>_closed`, `day_<n>_opens`
    and `day_<n>_closes`; a closing time at or before the opening time means after midnight and
    equal times mean open around the clock (StoreHours)."""

    same_day_cutoff = _time_field("Same-day cutoff (mall time)", required=True)
    prep_sla_minutes = bounded_int_field(
        "Prep time (minutes from order to ready)", minimum=PREP_SLA_MIN, maximum=PREP_SLA_MAX, message=PREP_SLA_MESSAGE
    )
    hourly_capacity = bounded_int_field(
        "Hourly capacity (orders the store can pack in an hour)",
        minimum=CAPACITY_MIN,
        maximum=CAPACITY_MAX,
        message=CAPACITY_MESSAGE,
    )
    pickup_instructions = forms.CharField(
        label="Pickup instructions for drivers",
        required=False,
        max_length=PICKUP_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": f"Keep pickup instructions to {PICKUP_MAX} characters or fewer."},
    )

    # retailers.selectors.store_settings_version of the settings the page showed.
    version = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for day in Weekday:
            self.fields[f"day_{day.value}_closed"] = forms.BooleanField(label="Closed", required=False)
            self.fields[f"day_{day.value}_opens"] = _time_field("Opens")
            self.fields[f"day_{day.value}_closes"] = _time_field("Closes")

    @classmethod
    def initial_for(cls, store: Store) -> dict[str, object]:
        initial: dict[str, object] = {
            "version": store_settings_version(store=store),
            "same_day_cutoff": store.same_day_cutoff,
            "prep_sla_minutes": store.prep_sla_minutes,
            "hourly_capacity": store.hourly_capacity,
            "pickup_instructions": store.pickup_instructions,
        }
        rows = {row.weekday: row for row in store.hours.all()}
        for day in Weekday:
            row = rows.get(day.value)
            initial[f"day_{day.value}_closed"] = row is None
            initial[f"day_{day.value}_opens"] = row.opens_at if row else None
            initial[f"day_{day.value}_closes"] = row.closes_at if row else None
        return initial

    def full_clean(self) -> None:
        super().full_clean()
        # Screen readers announce the message when the person lands on the field.
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-describedby"] = f"{self[name].auto_id}-error"

    def clean(self) -> dict:
        cleaned = super().clean()
        for day in Weekday:
            if cleaned.get(f"day_{day.value}_closed"):
                continue
            for part, word in (("opens", "opening"), ("closes", "closing")):
                name = f"day_{day.value}_{part}"
                if name not in self.errors and cleaned.get(name) is None:
                    self.add_error(name, f"Enter the {word} time for {day.label}, or tick Closed.")
        return cleaned

    def days(self) -> list[dict[str, object]]:
        """The weekday rows as the template lays them out."""
        return [
            {
                "label": day.label,
                "closed": self[f"day_{day.value}_closed"],
                "opens": self[f"day_{day.value}_opens"],
                "closes": self[f"day_{day.value}_closes"],
            }
            for day in Weekday
        ]

    def hours(self) -> dict[int, tuple[dt.time, dt.time] | None]:
        """weekday → (opens, closes), or None when closed; what store_update_settings takes."""
        hours: dict[int, tuple[dt.time, dt.time] | None] = {}
        for day in Weekday:
            if self.cleaned_data[f"day_{day.value}_closed"]:
                hours[day.value] = None
            else:
                hours[day.value] = (
                    self.cleaned_data[f"day_{day.value}_opens"],
                    self.cleaned_data[f"day_{day.value}_closes"],
                )
        return hours


class StorePauseForm(forms.Form):
    reason = forms.CharField(
        label="Why pause same-day?",
        max_length=PAUSE_REASON_MAX,
        strip=True,
        error_messages={
            "required": "Say why same-day is paused; everyone on the board will see it.",
            "max_length": f"Keep the reason to {PAUSE_REASON_MAX} characters or fewer.",
        },
    )
