"""Public onboarding URLs, mounted at the site root by portal/urls.py (no namespace: the auth
pages they sit beside have none)."""

from django.urls import path

from retailers import join_views

urlpatterns = [
    path("join/", join_views.join, name="join"),
    path("join/done/", join_views.join_done, name="join-done"),
    path("accounts/invite/<uidb64>/<token>/", join_views.invite_accept, name="invite-accept"),
]
