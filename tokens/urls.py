from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("customers/", views.account_picker, name="picker"),
    path("accounts/<str:account_id>/servers/", views.servers, name="servers"),
    path("accounts/<str:account_id>/servers.csv", views.servers_csv, name="servers_csv"),
    path("servers/<str:server_id>/", views.server_detail, name="server"),
    path("servers/<str:server_id>/assign/<str:product>/", views.assign, name="assign"),
    path("servers/<str:server_id>/token/", views.regenerate_token, name="token"),
    path("servers/<str:server_id>/rename/", views.rename, name="rename"),
    path("servers/<str:server_id>/deactivate/", views.deactivate, name="deactivate"),
    path(
        "servers/<str:server_id>/offline-activation/",
        views.offline_activation,
        name="offline_activation",
    ),
]
