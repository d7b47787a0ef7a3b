from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.admin import MallrunModelAdmin, is_operator
from portal.notifications import services
from portal.notifications.kinds import KINDS
from portal.notifications.models import Notification, NotificationStatus


@admin.register(Notification)
class NotificationAdmin(MallrunModelAdmin):
    """The outbox as operators see it: what went out, what waits for a retry, what gave up."""

    list_display = ["pk", "kind", "channel", "to", "status", "attempts", "due_at", "sent_at", "last_error"]
    list_filter = ["status", "channel", "kind"]
    search_fields = ["to", "dedupe_key", "subject"]
    date_hierarchy = "created_at"
    actions = ["send_again"]
    # The bodies through methods, so a message that carries a credential (a set-password link)
    # is not readable here: whoever opened it could take over the account.
    exclude = ["body", "html_body"]
    readonly_fields = ["message", "html_message"]

    @admin.display(description="Body")
    def message(self, obj: Notification) -> str:
        return self._unless_secret(obj, obj.body)

    @admin.display(description="HTML body")
    def html_message(self, obj: Notification) -> str:
        return self._unless_secret(obj, obj.html_body)

    @staticmethod
    def _unless_secret(obj: Notification, text: str) -> str:
        kind = KINDS.get(obj.kind)
        if kind is not None and kind.secret:
            return "Hidden: this message carries a one-time set-password link."
        return text

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Send the selected dead messages again")
    def send_again(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = services.retry_dead(ids=queryset.filter(status=NotificationStatus.DEAD).values_list("pk", flat=True))
        self.message_user(request, f"{count} message(s) will be sent again.", messages.SUCCESS)
