"""Validation of what drivers type. Forms never write."""

import datetime as dt
import zoneinfo
from decimal import Decimal

from django import forms

from drivers.services import SHIFT_FURTHEST_AHEAD
from retailers.models import Market


class OnlineForm(forms.Form):
    market = forms.ModelChoiceField(queryset=Market.objects.order_by("name"), empty_label=None)
    latitude = forms.DecimalField(min_value=Decimal("-90"), max_value=Decimal("90"), label="Latitude")
    longitude = forms.DecimalField(min_value=Decimal("-180"), max_value=Decimal("180"), label="Longitude")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Text inputs: a number input would echo a typo back as an invalid value attribute.
        for name in ("latitude", "longitude"):
            self.fields[name].widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})

    def clean(self):
        cleaned = super().clean()
        # Phones report more places than the 6 stored (about 10 cm): round, do not refuse.
        for name in ("latitude", "longitude"):
            if cleaned.get(name) is not None:
                cleaned[name] = cleaned[name].quantize(Decimal("0.000001"))
        return cleaned


# A phone's photo is a few MB and at most about 50 megapixels; anything beyond is not a photo
# of a door (a 144-megapixel PNG decompressed to over 500 MB of memory).
PHOTO_MAX_BYTES = 15 * 1024 * 1024
PHOTO_MAX_PIXELS = 50_000_000


def mark_errors(form: forms.Form, *, focus_first: bool = False) -> None:
    """Each field with an error says so to screen readers: aria-invalid, and its message (the
    template's `<id>-error`) first among what describes it, so it is read when the person lands
    on the field. With `focus_first`, the first such field takes the focus. Safe to run again."""
    for name, field in form.fields.items():
        if name not in form.errors:
            continue
        error_id = f"{form[name].auto_id}-error"
        described = field.widget.attrs.get("aria-describedby", "").split()
        field.widget.attrs |= {
            "aria-describedby": " ".join([error_id, *(entry for entry in described if entry != error_id)]),
            "aria-invalid": "true",
        }
        if focus_first:
            field.widget.attrs["autofocus"] = True
            focus_first = False


class DeliverForm(forms.Form):
    photo = forms.ImageField(label="Photo of the package at the door")
    pin = forms.CharField(label="Shopper's PIN", max_length=4, required=False)

    def __init__(self, *args, requires_pin: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.requires_pin = requires_pin
        self.fields["photo"].widget.attrs |= {"accept": "image/*", "capture": "environment"}
        self.fields["pin"].widget.attrs |= {"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]{4}"}
        if requires_pin:
            self.fields["pin"].required = True

    def full_clean(self) -> None:
        super().full_clean()
        self.mark_errors()

    def mark_errors(self) -> None:
        """As after validation; again after a refusal added an error (a wrong PIN)."""
        mark_errors(self, focus_first=True)

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        width, height = photo.image.size  # read by ImageField from the header, not decoded
        if photo.size > PHOTO_MAX_BYTES or width * height > PHOTO_MAX_PIXELS:
            raise forms.ValidationError("This photo is too large: take it again with the phone's camera.")
        return photo

    def clean_pin(self) -> str:
        pin = self.cleaned_data["pin"].strip()
        # 0-9 only: isdigit() also takes other scripts' digits ("١٢٣٤"), which the PIN check
        # (hmac.compare_digest, ASCII only) cannot compare.
        if pin and (len(pin) != 4 or not (pin.isascii() and pin.isdigit())):
            raise forms.ValidationError("The PIN has 4 digits.")
        return pin


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say what happened.")
        return reason


class ForfeitForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class ShiftForm(forms.Form):
    """A shift as the driver types it: a date and two clock times in their home market's local
    time. An end time earlier than the start means the next day (a shift past midnight)."""

    day = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    starts = forms.TimeField(label="Start time", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    ends = forms.TimeField(
        label="End time",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="An end time earlier than the start time means the next day (a shift past midnight).",
    )

    def __init__(self, *args, tz: zoneinfo.ZoneInfo, **kwargs):
        kwargs.setdefault("auto_id", "shift-%s")
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.fields["ends"].widget.attrs["aria-describedby"] = f"{self['ends'].auto_id}-help"

    def full_clean(self) -> None:
        super().full_clean()
        mark_errors(self)

    def clean(self) -> dict:
        cleaned = super().clean()
        day, starts, ends = cleaned.get("day"), cleaned.get("starts"), cleaned.get("ends")
        if day is None or starts is None or ends is None:
            return cleaned
        if ends == starts:
            self.add_error("ends", "The end time must differ from the start time.")
            return cleaned
        try:
            end_day = day if ends > starts else day + dt.timedelta(days=1)
            starts_at = dt.datetime.combine(day, starts, tzinfo=self.tz)
            ends_at = dt.datetime.combine(end_day, ends, tzinfo=self.tz)
            # Both must exist in UTC too: the calendar's last evening west of Greenwich does not.
            starts_at.astimezone(dt.UTC), ends_at.astimezone(dt.UTC)
        except OverflowError:
            self.add_error("day", f"Pick a date within the next {SHIFT_FURTHEST_AHEAD.days} days.")
            return cleaned
        cleaned["starts_at"], cleaned["ends_at"] = starts_at, ends_at
        return cleaned
