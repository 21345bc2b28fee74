"""/api/v1/: the schema and its docs, and each app's own API routes (`<app>/api_urls.py`), all
named in the "api" namespace."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

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
    path("", include("orders.api_urls")),
    path("", include("smartaccounts.api_urls")),
    path("", include("tokens.api_urls")),
    path("", include("activation_api.api_urls")),
]
