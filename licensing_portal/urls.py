from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from smartaccounts import auth_views as auth_login

from . import metrics, views

admin.site.site_header = "Cloud Licensing — back office"
admin.site.site_title = "Cloud Licensing back office"

handler400 = "licensing_portal.views.bad_request"
handler403 = "licensing_portal.views.permission_denied"
handler404 = "licensing_portal.views.not_found"
handler500 = "licensing_portal.views.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("internal/metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("licensing_portal.api_urls")),
    path("login/", auth_login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth_login.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("", include("orders.urls")),
    path("", include("tokens.urls")),
    path("", include("lifecycle.urls")),
    path("", include("smartaccounts.urls")),
]
