"""The store's own pages, mounted under /store/ in the `store` namespace by portal/store_urls.py."""

from django.urls import path

from orders import labels
from retailers import views

urlpatterns = [
    path("settings/", views.store_settings, name="store-settings"),
    path("settings/pause/", views.store_pause, name="store-pause"),
    path("settings/resume/", views.store_resume, name="store-resume"),
    path("orders/<int:pk>/labels/", labels.order_labels, name="order-labels"),
]

# Same-day stock (engineer F, issue 5).
from retailers import stock_views  # noqa: E402

urlpatterns += [
    path("stock/", stock_views.stock_list, name="stock"),
    path("stock/<int:listing_id>/", stock_views.stock_update, name="stock-update"),
]

# Store onboarding and the team page (issue 6 part B).
from retailers import onboarding_views, team_views  # noqa: E402

urlpatterns += [
    path("onboarding/", onboarding_views.onboarding_page, name="onboarding"),
    path("onboarding/agreement/", onboarding_views.agreement_accept, name="onboarding-agreement"),
    path("onboarding/training/", onboarding_views.training_order_create, name="onboarding-training"),
    path("onboarding/training/driver/", onboarding_views.training_call_driver, name="onboarding-training-driver"),
    path("team/", team_views.team_page, name="team"),
    path("team/invite/", team_views.team_invite, name="team-invite"),
    path("team/<int:pk>/role/", team_views.team_change_role, name="team-role"),
    path("team/<int:pk>/deactivate/", team_views.team_deactivate, name="team-deactivate"),
]
