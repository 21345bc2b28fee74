from django.urls import path

from . import views

app_name = "smartaccounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/<str:account_id>/", views.account_licenses, name="account"),
    path(
        "accounts/<str:account_id>/licenses.csv",
        views.account_licenses_csv,
        name="licenses_csv",
    ),
    path(
        "accounts/<str:account_id>/licenses/<str:product>/",
        views.account_license_detail,
        name="license_detail",
    ),
    path("licenses/<str:license_id>/auto-renew/", views.license_auto_renew, name="auto_renew"),
    path("team/", views.team, name="team"),
    path("team/<str:user_id>/role/", views.team_role, name="team_role"),
    path("team/<str:user_id>/deactivate/", views.team_deactivate, name="team_deactivate"),
    # The invitation's id travels in the form body: it names an event, not a person.
    path("team/invitations/resend/", views.team_invitation_resend, name="team_invitation_resend"),
    path("team/invitations/cancel/", views.team_invitation_cancel, name="team_invitation_cancel"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<str:key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
    path("invitation/<uidb64>/<token>/", views.InvitationView.as_view(), name="invitation"),
]
