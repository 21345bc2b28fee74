from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from activation_api import api as activation_api
from orders import api as orders_api
from smartaccounts import api as accounts_api
from tokens import api as servers_api

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file, so scripts stay 'self' only; Swagger UI
    # sets element styles from its script, which this page alone allows.
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema")
        ),
        name="docs",
    ),
    path("orders", orders_api.OrderListCreateApi.as_view(), name="orders"),
    path("orders/<str:order_id>", orders_api.OrderDetailApi.as_view(), name="order"),
    path("orders/<str:order_id>/unlock", orders_api.OrderUnlockApi.as_view(), name="order-unlock"),
    path("resellers", orders_api.ResellerListApi.as_view(), name="resellers"),
]

urlpatterns += [
    path("accounts", accounts_api.AccountListApi.as_view(), name="accounts"),
    path(
        "accounts/<str:account_id>/licenses",
        accounts_api.AccountLicensesApi.as_view(),
        name="account-licenses",
    ),
    path(
        "accounts/<str:account_id>/servers",
        servers_api.AccountServersApi.as_view(),
        name="account-servers",
    ),
    path("servers/<str:server_id>", servers_api.ServerDetailApi.as_view(), name="server"),
    path(
        "servers/<str:server_id>/assignments/<str:product>",
        servers_api.ServerAssignmentApi.as_view(),
        name="server-assignment",
    ),
    path(
        "servers/<str:server_id>/token", servers_api.ServerTokenApi.as_view(), name="server-token"
    ),
]

urlpatterns += [
    path(
        "servers/<str:server_id>/offline-activation",
        activation_api.OfflineActivationApi.as_view(),
        name="server-offline-activation",
    ),
    path("keys", activation_api.KeysApi.as_view(), name="keys"),
    path("activation", activation_api.ActivationApi.as_view(), name="activation"),
    path("activation/sync", activation_api.SyncApi.as_view(), name="activation-sync"),
]
