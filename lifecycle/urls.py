from django.urls import path

from . import views

app_name = "lifecycle"

urlpatterns = [
    path("renewals/", views.renewals, name="renewals"),
    path("settings/notifications/", views.notifications, name="notifications"),
    path("accounts/<str:account_id>/overview/", views.account_dashboard, name="overview"),
    path("accounts/<str:account_id>/history/", views.account_history, name="history"),
    path("licenses/<str:license_id>/ask-renewal/", views.ask_renewal, name="ask_renewal"),
]
