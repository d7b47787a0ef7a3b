from django.contrib import admin
from django.urls import include, path

from portal.env import envbool
from portal.views import home

urlpatterns = [
    path("", home, name="home"),
    path("", include("retailers.join_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("orders.api.views")),
    path("store/", include("portal.store_urls")),
    path("driver/", include("drivers.urls")),
]

if envbool("BENCH_FLOOR_VIEWS", False):
    urlpatterns.append(path("bench/", include("bench.floor")))
