"""The device API's routes (what AppSuite servers call, and the offline exchange), included by
licensing_portal/api_urls.py under /api/v1/ ("api:")."""

from django.urls import path

from . import api

urlpatterns = [
    path(
        "servers/<str:server_id>/offline-activation",
        api.OfflineActivationApi.as_view(),
        name="server-offline-activation",
    ),
    path("keys", api.KeysApi.as_view(), name="keys"),
    path("activation", api.ActivationApi.as_view(), name="activation"),
    path("activation/sync", api.SyncApi.as_view(), name="activation-sync"),
]
