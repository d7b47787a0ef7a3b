"""The program limits in the admin, for operators only: one row (ProgramLimits.current()), so the
list goes straight to it (or to the add page before the first save), a second row cannot be
added and the row cannot be deleted. A save goes through the service, which queues the
eligibility recompute of every mall."""

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from portal.admin import OperatorAdmin, is_operator
from retailers.models import Listing, ProgramLimits, SizeClass
from retailers.services import program_limits_update

WEIGHT_MAX = 2_147_483_647  # PositiveIntegerField's ceiling on PostgreSQL
CATEGORY_MAX = Listing._meta.get_field("category").max_length


class ProgramLimitsForm(forms.ModelForm):
    max_weight_grams = forms.IntegerField(
        label="Heaviest listing allowed (grams)",
        min_value=1,
        max_value=WEIGHT_MAX,
        error_messages={
            "required": "Enter the heaviest weight allowed, in grams.",
            "invalid": "Enter a whole number of grams.",
            "min_value": "Enter a weight of at least 1 gram.",
            "max_value": f"Enter a weight of at most {WEIGHT_MAX} grams.",
        },
    )
    allowed_size_classes = forms.MultipleChoiceField(
        label="Size classes allowed",
        choices=SizeClass.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one size class.",
            "invalid_choice": f"%(value)s is not a size class: choose among {', '.join(SizeClass.values)}.",
        },
    )
    allowed_categories = forms.CharField(
        label="Categories allowed",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Comma-separated, for example: apparel, footwear. Stored trimmed and lowercase. Empty allows "
        "every category.",
    )

    class Meta:
        model = ProgramLimits
        fields = ["max_weight_grams", "allowed_size_classes", "allowed_categories"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.facts().allowed_size_classes
        self.initial["allowed_size_classes"] = [size for size in SizeClass.values if size in stored]
        # Before the first save, the limits in force are the model's defaults: start from them
        # (the declared fields above do not take a model default as their initial value).
        for name in ("max_weight_grams", "allowed_categories"):
            self.initial.setdefault(name, getattr(self.instance, name))

    def clean_allowed_size_classes(self) -> str:
        chosen = set(self.cleaned_data["allowed_size_classes"])
        return ",".join(size for size in SizeClass.values if size in chosen)

    def clean_allowed_categories(self) -> str:
        categories = ProgramLimits.categories_list(self.cleaned_data["allowed_categories"])
        too_long = [category for category in categories if len(category) > CATEGORY_MAX]
        if too_long:
            raise forms.ValidationError(
                f"Keep each category to {CATEGORY_MAX} characters, as a listing's category: "
                f"{', '.join(too_long)} is longer."
            )
        return ",".join(categories)


@admin.register(ProgramLimits)
class ProgramLimitsAdmin(OperatorAdmin):
    form = ProgramLimitsForm
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row: the limits every listing is checked against.
        return super().has_add_permission(request) and not ProgramLimits.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs) -> HttpResponse:
        # One row: no "Save and add another" on its add page.
        context["show_save_and_add_another"] = False
        return super().render_change_form(request, context, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not is_operator(request.user):
            return super().changelist_view(request, extra_context)  # refuses as for any operator page
        row = ProgramLimits.objects.order_by("pk").first()
        if row is None:
            return redirect("admin:retailers_programlimits_add")
        return redirect("admin:retailers_programlimits_change", row.pk)

    def save_model(self, request: HttpRequest, obj: ProgramLimits, form: ProgramLimitsForm, change: bool) -> None:
        saved = program_limits_update(
            max_weight_grams=form.cleaned_data["max_weight_grams"],
            allowed_size_classes=form.cleaned_data["allowed_size_classes"].split(","),
            allowed_categories=form.cleaned_data["allowed_categories"].split(","),
        )
        obj.pk, obj.allowed_size_classes, obj.allowed_categories = (
            saved.pk,
            saved.allowed_size_classes,
            saved.allowed_categories,
        )
        obj.updated_at = saved.updated_at
