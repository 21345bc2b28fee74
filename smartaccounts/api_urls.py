"""The Smart Account API's routes, included by licensing_portal/api_urls.py under /api/v1/
("api:")."""

from django.urls import path

from . import api

urlpatterns = [
    path("accounts", api.AccountListApi.as_view(), name="accounts"),
    path(
        "accounts/<str:account_id>/licenses",
        api.AccountLicensesApi.as_view(),
        name="account-licenses",
    ),
]
