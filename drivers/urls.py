from django.urls import path

from drivers import views

app_name = "driver"
urlpatterns = [
    path("", views.home, name="home"),
    path("trips/", views.trips, name="trips"),
    path("online/", views.go_online, name="go-online"),
    path("offline/", views.go_offline, name="go-offline"),
    path("shifts/", views.shift_schedule, name="shift-schedule"),
    path("shifts/<int:pk>/cancel/", views.shift_cancel, name="shift-cancel"),
    path("offers/<int:offer_id>/accept/", views.offer_accept, name="offer-accept"),
    path("offers/<int:offer_id>/decline/", views.offer_decline, name="offer-decline"),
    path("routes/<int:pk>/", views.route_detail, name="route"),
    path("routes/<int:pk>/forfeit/", views.route_forfeit, name="route-forfeit"),
    path("routes/<int:pk>/stores/<int:store_id>/check-in/", views.route_check_in, name="route-check-in"),
    path("stops/<int:pk>/deliver/", views.stop_deliver, name="stop-deliver"),
    path("stops/<int:pk>/undeliverable/", views.stop_undeliverable, name="stop-undeliverable"),
]
