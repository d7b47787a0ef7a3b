from django.urls import path

from orders import views

# Included by portal/store_urls.py under /store/ in the `store` namespace.
urlpatterns = [
    path("", views.board, name="board"),
    path("search/", views.search, name="search"),
    path("handoff/", views.handoff, name="handoff"),
    path("handoff/confirm/", views.handoff_confirm, name="handoff-confirm"),
    path("switch-store/", views.switch_store, name="switch-store"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("orders/<int:pk>/accept/", views.order_accept, name="order-accept"),
    path("orders/<int:pk>/start-picking/", views.order_start_picking, name="order-start-picking"),
    path("orders/<int:pk>/picked/", views.order_record_picked, name="order-record-picked"),
    path("orders/<int:pk>/ready/", views.order_mark_ready, name="order-mark-ready"),
    path("orders/<int:pk>/problem/", views.order_report_problem, name="order-report-problem"),
    path("orders/<int:pk>/send-rest/", views.order_send_rest, name="order-send-rest"),
    path("orders/<int:pk>/reject/", views.order_reject, name="order-reject"),
    path("orders/<int:pk>/returned/", views.order_confirm_returned, name="order-confirm-returned"),
]
