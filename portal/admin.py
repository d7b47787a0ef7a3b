"""Admin base classes. Operators (superusers) see everything. Seller managers (staff users with
a retailers.SellerMembership) see and change only their own seller's rows: every seller-scoped
admin derives from SellerScopedAdmin, which scopes querysets, foreign-key and many-to-many
choices, autocomplete, related list filters, actions, inlines, object URLs and permissions from
one class attribute, `seller_path`."""

import contextlib
from collections.abc import Iterable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import DateTimeField, Model, QuerySet
from django.http import Http404, HttpRequest
from django.utils import formats, timezone
from django.utils.text import capfirst

from portal.auth import AnyCaseAdminLoginForm

_CACHE_ATTR = "_mallrun_managed_seller_ids"

# Seller managers and operators both work here: it is Mallrun's admin, not Django's.
admin.site.site_header = "Mallrun admin"
admin.site.site_title = "Mallrun admin"
admin.site.index_title = "Administration"
# Usernames in any case, as on the portal's log-in page.
admin.site.login_form = AnyCaseAdminLoginForm


def is_operator(user) -> bool:
    return bool(user.is_active and user.is_staff and user.is_superuser)


def managed_seller_ids(request: HttpRequest) -> frozenset[int]:
    """Ids of the sellers the request's user manages, looked up once per request."""
    cached = getattr(request, _CACHE_ATTR, None)
    if cached is None:
        from retailers.models import SellerMembership

        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff:
            cached = frozenset(SellerMembership.objects.filter(user=user).values_list("seller_id", flat=True))
        else:
            cached = frozenset()
        setattr(request, _CACHE_ATTR, cached)
    return cached


def is_seller_manager(request: HttpRequest) -> bool:
    return not is_operator(request.user) and bool(managed_seller_ids(request))


def scope_to_sellers(queryset: QuerySet, seller_path: str, seller_ids: Iterable[int]) -> QuerySet:
    lookup = f"{seller_path}__in" if seller_path else "pk__in"
    return queryset.filter(**{lookup: list(seller_ids)})


def seller_id_of(obj: Model, seller_path: str) -> int | None:
    """Follows `seller_path` ("seller", "store__seller", …) from obj to the seller's id."""
    if not seller_path:
        return obj.pk
    *hops, last = seller_path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


class _GuardedChangeList(ChangeList):
    def get_filters(self, request: HttpRequest):
        # Django's date hierarchy builds its bounds without catching a year past 9999 or one too
        # large for a C long (?placed_at__year=99999999999999999999): an invalid lookup, not a 500.
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error


class MallrunModelAdmin(admin.ModelAdmin):
    """Every Mallrun model admin derives from this: bad query strings and action selections
    get Django's messages, never a 500; a row's change page shows its times in its mall's (or
    market's) zone."""

    # From a row to the mall or market whose local time its page shows ("store__mall"); None
    # keeps UTC. Either way every time carries its zone (portal/formats).
    time_zone_path: str | None = None

    def _zone_of(self, obj: Model | None):
        """The zone of the mall or market at `time_zone_path` from `obj`; None for UTC."""
        if obj is None or not self.time_zone_path:
            return None
        target = obj
        for hop in self.time_zone_path.split("__"):
            target = getattr(target, hop, None)
        return getattr(target, "tz", None)

    def _local_zone(self, request: HttpRequest, object_id: str):
        if self.time_zone_path is None:
            return None
        return self._zone_of(self.get_object(request, unquote(object_id)))

    def get_list_select_related(self, request: HttpRequest):
        """The list's joins, and the row's mall or market for its times: one join, not a query
        per row. (Django's own rule for False: every foreign key the list shows.)"""
        related = super().get_list_select_related(request)
        if not self.time_zone_path or related is True:
            return related
        if related is False:
            relations = {field.name for field in self.model._meta.concrete_fields if field.is_relation}
            related = [name for name in self.list_display if name in relations]
        return [*related, self.time_zone_path]

    def _local_time_column(self, name: str, field: DateTimeField):
        """A list column of `name` written in its row's mall or market zone (with the zone's name)."""

        def column(obj: Model) -> str:
            value = getattr(obj, name)
            if value is None:
                return self.get_empty_value_display()
            zone = self._zone_of(obj)
            with timezone.override(zone) if zone is not None else contextlib.nullcontext():
                return formats.localize(timezone.template_localtime(value))

        column.short_description = capfirst(field.verbose_name)
        column.admin_order_field = name
        column.__name__ = name
        return column

    def get_list_display(self, request: HttpRequest):
        """Times in a list are in each row's mall or market zone, as on the row's own page (a list
        can hold rows of several zones, so each time names its zone)."""
        names = super().get_list_display(request)
        if not self.time_zone_path:
            return names
        links = set(self.get_list_display_links(request, names) or ())
        columns = []
        for index, name in enumerate(names):
            field = None
            if isinstance(name, str) and name not in links and index > 0:
                with contextlib.suppress(FieldDoesNotExist):
                    field = self.model._meta.get_field(name)
            columns.append(self._local_time_column(name, field) if isinstance(field, DateTimeField) else name)
        return columns

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        zone = self._local_zone(request, object_id)
        if zone is None:
            return super().change_view(request, object_id, form_url, extra_context)
        with timezone.override(zone):
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()  # a TemplateResponse renders later, outside the zone
        return response

    def get_changelist(self, request: HttpRequest, **kwargs):
        return _GuardedChangeList

    def response_action(self, request: HttpRequest, queryset: QuerySet):
        """An action on selected rows none of which is in this list (ids that are not ids, rows
        gone since the page was drawn, another seller's) changes nothing and says so; Django would
        run it on nothing ("Revoked 0 clients"), or fail on an id that is not a number."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if selected and request.POST.get("select_across", "0") in {"", "0", "False", "false"}:
            ids = []
            for value in selected:
                try:
                    ids.append(self.model._meta.pk.to_python(value))
                except ValidationError:
                    continue
            if not queryset.filter(pk__in=ids).exists():
                self.message_user(
                    request, "None of the selected items is in this list: nothing was changed.", messages.WARNING
                )
                return None
            post = request.POST.copy()
            post.setlist(helpers.ACTION_CHECKBOX_NAME, [str(pk) for pk in ids])
            request.POST = post
        return super().response_action(request, queryset)


class OperatorAdmin(MallrunModelAdmin):
    """Operators only, whatever model permissions a staff user may hold."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request.user)


class _SellerScopeMixin:
    """What SellerScopedAdmin and SellerScopedInline share."""

    seller_path: str = "seller"
    # What a seller manager may do on their own seller's rows, without Django model permissions.
    manager_permissions: frozenset[str] = frozenset({"view", "add", "change", "delete"})
    # Related models a manager may pick from in full (e.g. malls: public reference data).
    manager_open_models: frozenset[str] = frozenset()

    def _may(self, request: HttpRequest, permission: str, obj=None) -> bool:
        if is_operator(request.user):
            return True
        if permission not in self.manager_permissions:
            return False
        sellers = managed_seller_ids(request)
        if not sellers:
            return False
        return obj is None or seller_id_of(obj, self.seller_path) in sellers

    def scope(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if is_operator(request.user):
            return queryset
        return scope_to_sellers(queryset, self.seller_path, managed_seller_ids(request))

    def related_choices(self, request: HttpRequest, model: type[Model]) -> QuerySet | None:
        """The rows of `model` this user may pick, or None to keep Django's default."""
        if is_operator(request.user):
            return None
        related_admin = self.admin_site._registry.get(model)
        if isinstance(related_admin, SellerScopedAdmin):
            return related_admin.get_queryset(request)
        if model._meta.label_lower in self.manager_open_models:
            return None
        return model._default_manager.none()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            choices = self.related_choices(request, db_field.related_model)
            if choices is not None:
                kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            choices = self.related_choices(request, db_field.related_model)
            if choices is not None:
                kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class SellerScopedAdmin(_SellerScopeMixin, MallrunModelAdmin):
    """A ModelAdmin whose rows belong to one seller through `seller_path`."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(request, super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # The autocomplete view searches through here: scope again so no subclass override
        # can widen what a manager fishes out of /admin/autocomplete/.
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return self.scope(request, queryset), may_have_duplicates

    def get_list_filter(self, request: HttpRequest):
        return [
            (item, SellerScopedRelatedFilter) if isinstance(item, str) and self._is_relation(item) else item
            for item in super().get_list_filter(request)
        ]

    def _is_relation(self, path: str) -> bool:
        from django.contrib.admin.utils import get_fields_from_path

        try:
            field = get_fields_from_path(self.model, path)[-1]
        except Exception:  # noqa: BLE001 - not a model path: leave it to Django's own checks
            return False
        return bool(getattr(field, "is_relation", False) and field.related_model is not None)

    def _only_seller_id(self, request: HttpRequest) -> int | None:
        sellers = managed_seller_ids(request)
        if is_operator(request.user) or len(sellers) != 1:
            return None
        return next(iter(sellers))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        only = self._only_seller_id(request)
        if self.seller_path == "seller" and only is not None:
            initial.setdefault("seller", only)
        return initial

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        # The form's choices are scoped already; this keeps a manager from ever writing a row
        # for another seller, whatever reaches save_model.
        if (
            self.seller_path == "seller"
            and not is_operator(request.user)
            and obj.seller_id not in managed_seller_ids(request)
        ):
            raise PermissionDenied("You can only create rows for your own seller.")
        super().save_model(request, obj, form, change)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts, object_id):
        # Another seller's row does not exist for this user: 404, like every store page.
        raise Http404(f"No {opts.verbose_name} with id {object_id}.")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "view")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, "view", obj) or self._may(request, "change", obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "add")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, "delete", obj)


class SellerScopedInline(_SellerScopeMixin, admin.options.InlineModelAdmin):
    """An inline of a seller-scoped parent; `seller_path` goes from the inline's model."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(request, super().get_queryset(request))

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, "view") or self._may(request, "change")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, "add")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, "change")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request, "delete")


class SellerScopedTabularInline(SellerScopedInline):
    template = "admin/edit_inline/tabular.html"


class ReadOnlyInline(SellerScopedTabularInline):
    """History shown inside its parent: nobody adds, changes or deletes it here."""

    manager_permissions = frozenset({"view"})
    extra = 0
    can_delete = False
    show_change_link = False

    def get_fields(self, request: HttpRequest, obj=None):
        if self.fields:
            return self.fields
        parent_fk = self.fk_name or next(
            field.name for field in self.model._meta.fields if field.related_model is self.parent_model
        )
        return [field.name for field in self.model._meta.fields if not field.primary_key and field.name != parent_fk]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class SellerScopedRelatedFilter(admin.RelatedFieldListFilter):
    """Offers a manager only the related rows they may see: their own stores, listings, … and,
    for unscoped models such as malls, only the ones their own rows point at."""

    def field_choices(self, field, request: HttpRequest, model_admin):
        if is_operator(request.user):
            return super().field_choices(field, request, model_admin)
        related_admin = model_admin.admin_site._registry.get(field.related_model)
        if isinstance(related_admin, SellerScopedAdmin):
            allowed = related_admin.get_queryset(request).values("pk")
        else:
            allowed = model_admin.get_queryset(request).values(f"{self.field_path}__pk")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to={"pk__in": allowed})


# Added by engineer C (infrastructure): the worker heartbeat, read-only, for operators.
from portal.models import WorkerHeartbeat  # noqa: E402


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(OperatorAdmin):
    list_display = ["name", "last_seen_at", "worker", "beats"]
    readonly_fields = ["name", "last_seen_at", "worker", "beats"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
