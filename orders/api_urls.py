"""The orders API's routes, included by licensing_portal/api_urls.py under /api/v1/ ("api:")."""

from django.urls import path

from . import api

urlpatterns = [
    path("orders", api.OrderListCreateApi.as_view(), name="orders"),
    path("orders/<str:order_id>", api.OrderDetailApi.as_view(), name="order"),
    path("orders/<str:order_id>/unlock", api.OrderUnlockApi.as_view(), name="order-unlock"),
    path("resellers", api.ResellerListApi.as_view(), name="resellers"),
]
