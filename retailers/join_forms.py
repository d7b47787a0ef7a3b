"""Validation of the public store application (/join/). Anyone on the internet can post here, so
every field is bounded, control characters are refused, and a wrong type or unknown id is a
message on the field, never an exception. Forms never write."""

import datetime as dt
import re

from django import forms
from django.core.exceptions import ValidationError

from retailers.forms import bounded_int_field
from retailers.invitations import EMAIL_MAX
from retailers.models import Mall, StoreCategory, Weekday

TIME_MESSAGE = "Enter a time as HH:MM, for example 09:30."
ORDERS_MIN, ORDERS_MAX = 1, 5000
ORDERS_MESSAGE = f"Enter a whole number of orders per day between {ORDERS_MIN} and {ORDERS_MAX}."
# Control characters, plus the invisible ones that hide or reorder text: zero-width spaces and
# joiners' kin, the byte-order mark, and the bidirectional embeddings, overrides and isolates
# ("Sunset\u202eLLC" shows reversed; a name of zero-width spaces looks blank to the reviewer).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b\u2060\ufeff\u202a-\u202e\u2066-\u2069]")
SELLER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,39}$")
UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./#-]{0,29}$")
PHONE = re.compile(r"^\+?[0-9 ().-]{7,24}$")
HONEYPOT = "website"
CONTROL_MESSAGE = "Remove the control characters (such as line breaks or tabs) from this field."


def no_control_characters(value: str) -> None:
    if CONTROL_CHARACTERS.search(value or ""):
        raise ValidationError(CONTROL_MESSAGE)


def _text(label: str, max_length: int, *, required_message: str, help_text: str = "", **attrs) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=max_length,
        help_text=help_text,
        validators=[no_control_characters],
        error_messages={
            "required": required_message,
            "max_length": f"Keep this to {max_length} characters or fewer.",
            "null_characters_not_allowed": CONTROL_MESSAGE,
        },
        widget=forms.TextInput(attrs={"maxlength": max_length, **attrs}),
    )


def _time_field(label: str) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=False,
        input_formats=["%H:%M", "%H:%M:%S"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": TIME_MESSAGE},
    )


class MallChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Mall) -> str:
        return f"{obj.name} ({obj.market.name})"

    def to_python(self, value):
        # Only digits can name a mall; anything else (or a number too big for the database)
        # is the same "choose from the list" message instead of a database error.
        if value not in self.empty_values and (not str(value).isdigit() or len(str(value)) > 18):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class JoinForm(forms.Form):
    """A store application. Hours: each weekday has `day_<n>_closed`, `day_<n>_opens` and
    `day_<n>_closes`; a closing time at or before the opening time means after midnight and
    equal times mean open around the clock (as on the store settings page)."""

    marketplace_seller_id = _text(
        "Marketplace seller id",
        40,
        required_message="Enter your marketplace seller id.",
        help_text="As shown in your marketplace seller account, for example A1B2C3D4E5.",
        autocomplete="off",
        spellcheck="false",
    )
    seller_name = _text(
        "Business name",
        120,
        required_message="Enter the business name of your seller account.",
        autocomplete="organization",
    )
    store_name = _text("Store name", 150, required_message="Enter the store's name as shoppers see it.")
    mall = MallChoiceField(
        label="Mall",
        queryset=Mall.objects.select_related("market").order_by("market__name", "name"),
        empty_label="Choose a mall",
        error_messages={
            "required": "Choose the mall your store is in.",
            "invalid_choice": "Choose a mall from the list.",
        },
    )
    unit = _text(
        "Unit number",
        30,
        required_message="Enter the store's unit number inside the mall.",
        help_text="For example L2-214.",
    )
    contact_name = _text("Your name", 120, required_message="Enter your name.", autocomplete="name")
    email = forms.EmailField(
        label="Email",
        # The address becomes the store manager's login name when the application is approved.
        max_length=EMAIL_MAX,
        validators=[no_control_characters],
        error_messages={
            "required": "Enter your email address.",
            "invalid": "Enter a valid email address, like name@example.com.",
            "max_length": f"Keep the email address to {EMAIL_MAX} characters or fewer: it becomes your login name.",
            "null_characters_not_allowed": CONTROL_MESSAGE,
        },
        widget=forms.EmailInput(attrs={"maxlength": EMAIL_MAX, "autocomplete": "email"}),
    )
    phone = _text(
        "Phone",
        24,
        required_message="Enter a phone number we can call about the application.",
        help_text="With area code, for example (702) 555-0134.",
        autocomplete="tel",
        type="tel",
    )
    categories = forms.MultipleChoiceField(
        label="What the store sells",
        choices=StoreCategory.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one category the store sells.",
            "invalid_choice": "Choose categories from the list.",
            "invalid_list": "Choose categories from the list.",
        },
    )
    estimated_daily_orders = bounded_int_field(
        "Estimated same-day orders per day",
        minimum=ORDERS_MIN,
        maximum=ORDERS_MAX,
        message=ORDERS_MESSAGE,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    # Spam trap: hidden from people (and from screen readers); bots fill in every field.
    website = forms.CharField(required=False, max_length=200, label="Leave this empty")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields[HONEYPOT].widget.attrs.update({"autocomplete": "off", "tabindex": "-1"})
        for day in Weekday:
            self.fields[f"day_{day.value}_closed"] = forms.BooleanField(label="Closed", required=False)
            self.fields[f"day_{day.value}_opens"] = _time_field("Opens")
            self.fields[f"day_{day.value}_closes"] = _time_field("Closes")

    def full_clean(self) -> None:
        super().full_clean()
        # Screen readers announce the message when the person lands on the field.
        for name in self.errors:
            if name in self.fields:
                auto_id = self[name].auto_id
                described = f"{auto_id}_helptext {auto_id}-error" if self.fields[name].help_text else f"{auto_id}-error"
                self.fields[name].widget.attrs["aria-describedby"] = described
                self.fields[name].widget.attrs["aria-invalid"] = "true"

    @property
    def is_spam(self) -> bool:
        return bool(self.data.get(HONEYPOT))

    def clean_marketplace_seller_id(self) -> str:
        value = self.cleaned_data["marketplace_seller_id"]
        if not SELLER_ID.match(value):
            raise ValidationError("A seller id has 2 to 40 letters, digits, dashes or underscores, and no spaces.")
        return value

    def clean_unit(self) -> str:
        value = self.cleaned_data["unit"]
        if not UNIT.match(value):
            raise ValidationError("Use letters, digits, spaces and . / # - only, for example L2-214.")
        return value

    def clean_phone(self) -> str:
        value = " ".join(self.cleaned_data["phone"].split())
        digits = re.sub(r"\D", "", value)
        if not PHONE.match(value) or not 10 <= len(digits) <= 15:
            raise ValidationError("Enter a phone number of 10 to 15 digits, for example (702) 555-0134.")
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        open_days = 0
        for day in Weekday:
            if cleaned.get(f"day_{day.value}_closed"):
                continue
            open_days += 1
            for part, word in (("opens", "opening"), ("closes", "closing")):
                name = f"day_{day.value}_{part}"
                if name not in self.errors and cleaned.get(name) is None:
                    self.add_error(name, f"Enter the {word} time for {day.label}, or tick Closed.")
        if open_days == 0:
            raise ValidationError("The store must be open on at least one day of the week.", code="no_hours")
        return cleaned

    def main_fields(self) -> list[forms.BoundField]:
        names = ["marketplace_seller_id", "seller_name", "store_name", "mall", "unit"]
        return [self[name] for name in names]

    def contact_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("contact_name", "email", "phone")]

    def days(self) -> list[dict[str, object]]:
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
        return {
            day.value: None
            if self.cleaned_data[f"day_{day.value}_closed"]
            else (self.cleaned_data[f"day_{day.value}_opens"], self.cleaned_data[f"day_{day.value}_closes"])
            for day in Weekday
        }

    def service_arguments(self) -> dict[str, object]:
        """What application_submit takes."""
        data = self.cleaned_data
        names = ["marketplace_seller_id", "seller_name", "store_name", "mall", "unit", "contact_name", "email", "phone"]
        return {
            **{name: data[name] for name in names},
            "categories": data["categories"],
            "estimated_daily_orders": data["estimated_daily_orders"],
            "hours": self.hours(),
        }
