"""The server API's routes, included by licensing_portal/api_urls.py under /api/v1/ ("api:")."""

from django.urls import path

from . import api

urlpatterns = [
    path(
        "accounts/<str:account_id>/servers",
        api.AccountServersApi.as_view(),
        name="account-servers",
    ),
    path("servers/<str:server_id>", api.ServerDetailApi.as_view(), name="server"),
    path(
        "servers/<str:server_id>/assignments/<str:product>",
        api.ServerAssignmentApi.as_view(),
        name="server-assignment",
    ),
    path("servers/<str:server_id>/token", api.ServerTokenApi.as_view(), name="server-token"),
]
