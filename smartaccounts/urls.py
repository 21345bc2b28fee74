from django.urls import path

from . import views

app_name = "smartaccounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<str:key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
    path("invitation/<uidb64>/<token>/", views.InvitationView.as_view(), name="invitation"),
]
