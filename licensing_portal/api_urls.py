from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from orders import api as orders_api

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("orders", orders_api.OrderListCreateApi.as_view(), name="orders"),
    path("orders/<str:order_id>", orders_api.OrderDetailApi.as_view(), name="order"),
    path("orders/<str:order_id>/unlock", orders_api.OrderUnlockApi.as_view(), name="order-unlock"),
    path("resellers", orders_api.ResellerListApi.as_view(), name="resellers"),
]
