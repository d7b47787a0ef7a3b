from django.contrib import admin
from django.urls import include, path

from orders.api.proof import proof_photo
from portal.env import envbool
from portal.views import home

urlpatterns = [
    path("", home, name="home"),
    path("", include("retailers.join_urls")),
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
