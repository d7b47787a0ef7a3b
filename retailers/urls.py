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
