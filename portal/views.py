from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from portal.security import log_refused
from retailers.models import StoreMembership


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Where a person lands after logging in: their store board, their driver page or the admin."""
    user = request.user
    if StoreMembership.objects.filter(user=user, is_active=True).exists():
        return redirect("store:board")
    if hasattr(user, "driver"):
        return redirect("driver:home")
    if user.is_staff:
        return redirect("admin:index")
    log_refused(request, "home:no-role", 403)
    raise PermissionDenied("Your account has no store, driver profile or admin access yet. Ask whoever invited you.")
