"""Bulk import of listings and stock in the admin (issue 5 point 5): upload → preview (dry run)
→ apply. Seller managers import into their own seller only; operators choose the seller. Files
of more than SYNC_ROWS rows run in a Celery task and the job page polls its progress."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from portal.admin import SellerScopedAdmin, is_operator, managed_seller_ids
from retailers.importing import (
    COLUMNS,
    MAX_FILE_BYTES,
    ImportRefused,
    import_job_create,
    import_job_run,
    import_row_estimate,
)
from retailers.models import ImportJob, ImportJobStatus, ImportKind, Seller
from retailers.tasks import import_job_task

SYNC_ROWS = 2_000


class ImportUploadForm(forms.Form):
    seller = forms.ModelChoiceField(queryset=Seller.objects.none())
    kind = forms.ChoiceField(choices=ImportKind.choices, label="What the file holds")
    file = forms.FileField(label="CSV or XLSX file", help_text=f"At most {MAX_FILE_BYTES // (1024 * 1024)} MB.")

    def __init__(self, *args, sellers, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["seller"].queryset = sellers
        if sellers.count() == 1:
            self.fields["seller"].initial = sellers.first()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it into smaller files."
            )
        return upload


def _start(job: ImportJob) -> None:
    if import_row_estimate(bytes(job.data)) <= SYNC_ROWS:
        import_job_run(job_id=job.pk)
    else:
        transaction.on_commit(lambda: import_job_task.delay(job.pk))


@admin.register(ImportJob)
class ImportJobAdmin(SellerScopedAdmin):
    manager_permissions = frozenset({"view", "add"})
    list_display = ["__str__", "seller", "status", "progress", "created_by", "created_at"]
    list_filter = ["kind", "status", "dry_run"]
    list_select_related = ["seller", "created_by"]
    exclude = ["data"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("data")

    def _sellers(self, request: HttpRequest):
        if is_operator(request.user):
            return Seller.objects.order_by("name")
        return Seller.objects.filter(pk__in=managed_seller_ids(request)).order_by("name")

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<int:job_id>/apply/", self.admin_site.admin_view(self.apply_view), name="{}_{}_apply".format(*info)),
        ] + super().get_urls()

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if request.method not in {"GET", "POST"}:
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportUploadForm(request.POST or None, request.FILES or None, sellers=self._sellers(request))
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = import_job_create(
                    seller=form.cleaned_data["seller"],
                    kind=form.cleaned_data["kind"],
                    dry_run=request.POST.get("action") != "apply",
                    file_name=upload.name,
                    data=upload.read(),
                    acting_user=request.user,
                )
            except ImportRefused as refused:
                form.add_error("file", refused.message)
            else:
                _start(job)
                return HttpResponseRedirect(reverse("admin:retailers_importjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import listings or stock",
            "form": form,
            "columns": COLUMNS,
            "sync_rows": SYNC_ROWS,
        }
        return render(request, "admin/retailers/import_upload.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None) -> HttpResponse:
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET"})
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = self._job(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(job),
            "job": job,
            "may_apply": job.dry_run
            and job.status == ImportJobStatus.SUCCEEDED
            and not job.result.get("error_count")
            and self.has_add_permission(request),
        }
        template = "admin/retailers/import_job.html"
        # A poll gets the section and, once the job is done, the page's announcement of it.
        return render(request, f"{template}#poll" if request.htmx else template, context)

    def apply_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        return require_POST(self._apply)(request, job_id)

    def _apply(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        preview = self._job(request, str(job_id))
        job = import_job_create(
            seller=preview.seller,
            kind=preview.kind,
            dry_run=False,
            file_name=preview.file_name,
            data=bytes(preview.data),
            acting_user=request.user,
        )
        _start(job)
        return HttpResponseRedirect(reverse("admin:retailers_importjob_change", args=[job.pk]))

    def _job(self, request: HttpRequest, object_id: str) -> ImportJob:
        try:
            return self.get_queryset(request).defer(None).select_related("seller").get(pk=int(object_id))
        except (ImportJob.DoesNotExist, ValueError):
            raise Http404(f"No import with id {object_id}.") from None
