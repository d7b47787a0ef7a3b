"""/store/team: a store manager's team page: who is on the team, invite by email, change role,
deactivate. Associates get 403 on the page and every action; a member of another store is 404.
The forms live here because only these views use them."""

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from portal.errors import ActionRefused
from portal.security import log_refused
from retailers import invitations, team
from retailers.access import require_manager, shown_membership
from retailers.models import StaffRole, StoreMembership

TEMPLATE = "store/team.html"
EMAIL_MAX = invitations.EMAIL_MAX
FULL_NAME_MAX = 150


class TeamInviteForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=EMAIL_MAX,
        error_messages={
            "required": "Enter the person's email address.",
            "invalid": "Enter a valid email address, like name@example.com.",
            "max_length": f"Keep the email address to {EMAIL_MAX} characters or fewer: it is the person's login name.",
        },
    )
    full_name = forms.CharField(
        label="Name (optional)",
        required=False,
        max_length=FULL_NAME_MAX,
        error_messages={"max_length": f"Keep the name to {FULL_NAME_MAX} characters or fewer."},
    )
    role = forms.ChoiceField(
        label="Role",
        choices=StaffRole.choices,
        initial=StaffRole.ASSOCIATE,
        error_messages={"invalid_choice": "Choose a role: associate or store manager.", "required": "Choose a role."},
    )


class TeamRoleForm(forms.Form):
    role = forms.ChoiceField(
        label="Role",
        choices=StaffRole.choices,
        error_messages={"invalid_choice": "Choose a role: associate or store manager.", "required": "Choose a role."},
    )


def _manager(request: HttpRequest) -> StoreMembership:
    membership = shown_membership(request)
    require_manager(request, membership)
    return membership


def _member(request: HttpRequest, membership: StoreMembership, pk: int) -> StoreMembership:
    member = StoreMembership.objects.filter(pk=pk, store=membership.store).select_related("user").first()
    if member is None:
        log_refused(request, f"store:{membership.store_id}:member:{pk}", 404)
        raise Http404("No such team member.")
    return member


def _render(
    request: HttpRequest, membership: StoreMembership, *, invite_form: TeamInviteForm | None = None, status: int = 200
) -> HttpResponse:
    store = membership.store
    context = {
        "membership": membership,
        "store": store,
        "members": team.team_member_list(store=store),
        "invite_form": invite_form or TeamInviteForm(),
        "roles": StaffRole.choices,
        "mall_tz": store.mall.tz,
    }
    template = f"{TEMPLATE}#team" if request.htmx else TEMPLATE
    return render(request, template, context, status=status)


def _after_change(request: HttpRequest, membership: StoreMembership) -> HttpResponse:
    # htmx swaps the refreshed team region in place; without JavaScript, post/redirect/get.
    if request.htmx:
        return _render(request, membership)
    return redirect("store:team")


def _leave(request: HttpRequest, url_name: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(reverse(url_name))
    return redirect(url_name)


@require_GET
@login_required
def team_page(request: HttpRequest) -> HttpResponse:
    return _render(request, _manager(request))


@require_POST
@login_required
def team_invite(request: HttpRequest) -> HttpResponse:
    membership = _manager(request)
    form = TeamInviteForm(request.POST)
    if not form.is_valid():
        return _render(request, membership, invite_form=form, status=422 if request.htmx else 200)
    try:
        member = team.team_invite(
            store=membership.store,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            full_name=form.cleaned_data["full_name"],
            acting_user=request.user,
        )
    except ActionRefused as refused:
        form.add_error("email", refused.message)
        return _render(request, membership, invite_form=form, status=422 if request.htmx else 200)
    address = member.user.email or member.user.get_username()
    role = member.get_role_display().lower()
    if member.before is None:
        messages.success(request, f"Invitation sent to {address}.")
    elif not member.before[1]:
        messages.success(request, f"{address} is back on the team as {role}; an email tells them.")
    elif member.before[0] != member.role:
        messages.success(request, f"New invitation sent to {address}, now as {role}.")
    else:
        messages.success(request, f"New invitation sent to {address}.")
    return _after_change(request, membership)


@require_POST
@login_required
def team_change_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _manager(request)
    member = _member(request, membership, pk)
    form = TeamRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["role"]))
        return _after_change(request, membership)
    try:
        member = team.team_change_role(
            store=membership.store, membership_id=member.pk, role=form.cleaned_data["role"], acting_user=request.user
        )
    except ActionRefused as refused:
        messages.error(request, refused.message)
    else:
        name = member.user.get_full_name() or member.user.get_username()
        messages.success(request, f"{name} is now {member.get_role_display().lower()}.")
    if (
        member.user_id == request.user.pk
        and not StoreMembership.objects.filter(pk=member.pk, role=StaffRole.MANAGER).exists()
    ):
        # A manager who made themself an associate can no longer see this page.
        return _leave(request, "store:board")
    return _after_change(request, membership)


@require_POST
@login_required
def team_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _manager(request)
    member = _member(request, membership, pk)
    try:
        member = team.team_deactivate(store=membership.store, membership_id=member.pk, acting_user=request.user)
    except ActionRefused as refused:
        messages.error(request, refused.message)
    else:
        if member.user_id == request.user.pk:
            # Their own sessions, this one included, just ended: start this request afresh too.
            logout(request)
            return _leave(request, "login")
        name = member.user.get_full_name() or member.user.get_username()
        where = "everywhere" if member.logged_out_everywhere else f"at {membership.store.name}"
        messages.success(request, f"{name} is deactivated and logged out {where}.")
    return _after_change(request, membership)
