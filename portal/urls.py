from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from orders.api.proof import proof_photo
from portal import accounts_views
from portal.auth import AnyCaseLoginForm
from portal.env import envbool
from portal.views import home

urlpatterns = [
    path("", home, name="home"),
    path("", include("retailers.join_urls")),
    # Password reset and change with our pages (and the outbox email); before auth.urls, which has
    # the same names.
    path("accounts/password_reset/", accounts_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password_reset/done/", accounts_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        accounts_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", accounts_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("accounts/password_change/", accounts_views.PasswordChangeView.as_view(), name="password_change"),
    # The username in any case (portal.auth).
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=AnyCaseLoginForm), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("orders.api.views")),
    # Delivery photos behind the signed, expiring links of the API's proof.photo_url.
    path("proof/<str:token>", proof_photo, name="proof-photo"),
    path("store/", include("portal.store_urls")),
    path("driver/", include("drivers.urls")),
]

if envbool("BENCH_FLOOR_VIEWS", False):
    urlpatterns.append(path("bench/", include("bench.floor")))
