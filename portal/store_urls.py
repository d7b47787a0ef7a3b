"""Everything under /store/: the order board (orders app) and the store's own settings
(retailers app), in one `store` namespace."""

from orders.urls import urlpatterns as order_patterns
from retailers.urls import urlpatterns as retailer_patterns

app_name = "store"
urlpatterns = [*order_patterns, *retailer_patterns]
