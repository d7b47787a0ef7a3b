import re

from django import forms

from orders.models import Order
from orders.services import MAX_PACKAGES


class StoreSwitchForm(forms.Form):
    # The bound keeps a tampered id within what the database can compare (SQLite overflows).
    store = forms.IntegerField(min_value=1, max_value=2**63 - 1)


class SearchForm(forms.Form):
    q = forms.CharField(label="Order number, label code, customer or item", max_length=64, strip=True)


class PackageCountForm(forms.Form):
    package_count = forms.IntegerField(
        label="Packages",
        min_value=1,
        max_value=MAX_PACKAGES,
        initial=1,
        help_text=f"1 to {MAX_PACKAGES}",
        error_messages=dict.fromkeys(
            ("required", "invalid", "min_value", "max_value"),
            f"Enter how many packages the order is in: a whole number from 1 to {MAX_PACKAGES}.",
        ),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300, strip=True)


class PickedForm(forms.Form):
    """One number per order line: how many units are in hand."""

    def __init__(self, *args, order: Order, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lines = list(order.lines.select_related("listing").order_by("pk"))
        for line in self.lines:
            self.fields[self.field_name(line.pk)] = forms.IntegerField(
                label=f"Picked of {line.listing.title}",
                min_value=0,
                max_value=line.quantity,
                initial=line.picked,
                error_messages=dict.fromkeys(
                    ("required", "invalid", "min_value", "max_value"),
                    f"Enter how many of {line.listing.title} are in hand: 0 to {line.quantity}.",
                ),
            )

    @staticmethod
    def field_name(line_id: int) -> str:
        return f"line_{line_id}"

    def picked(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data[self.field_name(line.pk)] for line in self.lines}

    def rows(self) -> list[tuple[object, forms.BoundField]]:
        return [(line, self[self.field_name(line.pk)]) for line in self.lines]


_LABEL_SEPARATORS = re.compile(r"[\s,;]+")


class LabelListField(forms.Field):
    """Every value sent under one name (the ticked boxes), stripped and upper-cased."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: object) -> list[str]:
        values = value if isinstance(value, list | tuple) else []
        return [str(item).strip().upper() for item in values if str(item).strip()]


class HandoffCodeForm(forms.Form):
    code = forms.CharField(label="Driver's pickup code", max_length=20, strip=True)

    def clean_code(self) -> str:
        digits = "".join(ch for ch in self.cleaned_data["code"] if ch.isdigit())
        if len(digits) != 6:
            raise forms.ValidationError("A pickup code has 6 digits: type the digits under the driver's QR code.")
        return digits


class HandoffConfirmForm(HandoffCodeForm):
    labels = LabelListField(required=False)
    scanned = forms.CharField(label="Scan or type a label code", max_length=400, required=False, strip=True)

    def clean_scanned(self) -> list[str]:
        parts = [part.upper() for part in _LABEL_SEPARATORS.split(self.cleaned_data["scanned"]) if part]
        if any(len(part) > 20 for part in parts):
            raise forms.ValidationError("That is not a label code: scan the code printed under the label's QR.")
        return parts

    def given_labels(self) -> list[str]:
        """Ticked and scanned labels together, each once."""
        return sorted({*self.cleaned_data["labels"], *self.cleaned_data["scanned"]})
