"""The team page: invite, change role, deactivate, keep an admin."""

import re
import uuid

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from smartaccounts.models import AuditEvent, User

from ...factories import (
    UserFactory,
)
from .conftest import INVITATION_LINK, MAX_QUERIES, PASSWORD, client_for, team_emails

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["alice_admin", "alice_member", "alice_viewer"])
def test_the_team_page_lists_the_organizations_people_only(cast, who):
    response = client_for(getattr(cast, who)).get("/team/")

    assert response.status_code == 200
    page = response.content.decode()
    assert team_emails(page) == [
        "alice@alice.example",
        "member@alice.example",
        "viewer@alice.example",
    ]
    assert "bob@bob.example" not in page and "carol@carol.example" not in page
    admin_tools = "Invite someone" in page and "/deactivate/" in page and "/role/" in page
    assert admin_tools == (who == "alice_admin")


def test_a_customer_admin_sees_its_own_team(cast):
    page = client_for(cast.carol_admin).get("/team/").content.decode()

    assert team_emails(page) == ["carol@carol.example", "viewer@carol.example"]


def test_an_admin_invites_by_email(cast, client, django_capture_on_commit_callbacks):
    client.force_login(cast.alice_admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/team/",
            {"email": " New.Person@Alice.Example ", "full_name": "New Person", "role": "member"},
        )

    assert response.status_code == 302
    assert response["Location"] == "/team/"
    user = User.objects.get(email="new.person@alice.example")
    assert user.organization == cast.alice_reseller
    assert user.role == User.Role.MEMBER
    assert user.full_name == "New Person"
    assert user.is_active and not user.has_usable_password()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@alice.example"]
    assert len(INVITATION_LINK.findall(message.body)) == 1
    event = AuditEvent.objects.get(action="user.invited")
    assert event.object_id == str(user.pk) and event.actor_user == cast.alice_admin
    page = client.get("/team/").content.decode()
    assert "Invitation sent to new.person@alice.example" in page
    assert "new.person@alice.example" in team_emails(page)
    assert "invited" in page


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "role": "member"}, "email"),
        ({"email": "", "role": "member"}, "email"),
        ({"email": "x@alice.example", "role": "owner"}, "role"),
        ({"email": "x@alice.example"}, "role"),
        # Someone already in the team. (Another organization's address is answered like a
        # new one: tests/smartaccounts/invite_enumeration/, S27.)
        ({"email": "member@alice.example", "role": "admin"}, "email"),
    ],
)
def test_an_invalid_invitation_is_400_beside_the_field_and_sends_nothing(
    cast, client, django_capture_on_commit_callbacks, body, field
):
    client.force_login(cast.alice_admin)
    users_before = set(User.objects.values_list("pk", "email", "organization_id", "role"))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/team/", body)

    assert response.status_code == 400
    page = response.content.decode()
    beside = re.search(
        rf'<(?:input|select)[^>]*id="id_{field}"[^>]*>.*?'
        rf'<ul class="errorlist" id="id_{field}_errors">',
        page,
        re.S,
    )
    assert beside is not None, page
    assert "<label" not in page[beside.start() : beside.end()]
    assert set(User.objects.values_list("pk", "email", "organization_id", "role")) == users_before
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action="user.invited").exists()


@pytest.mark.parametrize("who", ["alice_member", "alice_viewer", "carol_viewer"])
def test_members_and_viewers_may_not_invite(cast, who, django_capture_on_commit_callbacks):
    users_before = User.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(getattr(cast, who)).post(
            "/team/", {"email": "x@alice.example", "role": "admin"}
        )

    assert response.status_code == 403
    assert User.objects.count() == users_before
    assert mail.outbox == []


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_the_team_page_refuses_other_methods(cast, method):
    response = getattr(client_for(cast.alice_admin), method)("/team/")

    assert response.status_code == 405


def test_an_admin_changes_a_role(cast):
    client = client_for(cast.alice_admin)

    response = client.post(f"/team/{cast.alice_member.pk}/role/", {"role": "viewer"})

    assert response.status_code == 302
    assert response["Location"] == "/team/"
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.role == User.Role.VIEWER
    event = AuditEvent.objects.get(action="user.role_changed")
    assert event.data == {"email": "member@alice.example", "from": "member", "to": "viewer"}
    assert "message-success" in client.get("/team/").content.decode()


def test_the_role_change_message_names_the_new_role(cast):
    client = client_for(cast.alice_admin)

    client.post(f"/team/{cast.alice_member.pk}/role/", {"role": "viewer"})

    assert "member@alice.example is now viewer." in client.get("/team/").content.decode()


@pytest.mark.parametrize("role", ["owner", ""])
def test_an_invalid_role_changes_nothing(cast, role):
    client = client_for(cast.alice_admin)

    response = client.post(f"/team/{cast.alice_member.pk}/role/", {"role": role})

    assert response.status_code == 302
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.role == User.Role.MEMBER
    assert "Choose a valid role." in client.get("/team/").content.decode()
    assert not AuditEvent.objects.filter(action="user.role_changed").exists()


def test_the_last_admin_cannot_be_demoted_or_deactivated(cast):
    # Another admin who can no longer log in does not count.
    UserFactory(organization=cast.alice_reseller, email="gone@alice.example", is_active=False)
    client = client_for(cast.alice_admin)

    demoted = client.post(f"/team/{cast.alice_admin.pk}/role/", {"role": "member"})
    assert demoted.status_code == 302
    assert "at least one active admin" in client.get("/team/").content.decode()

    deactivated = client.post(f"/team/{cast.alice_admin.pk}/deactivate/")
    assert deactivated.status_code == 302
    assert "at least one active admin" in client.get("/team/").content.decode()

    cast.alice_admin.refresh_from_db()
    assert cast.alice_admin.role == User.Role.ADMIN and cast.alice_admin.is_active
    assert not AuditEvent.objects.filter(
        action__in=["user.role_changed", "user.deactivated"]
    ).exists()


def test_with_a_second_admin_the_first_may_step_down(cast):
    client = client_for(cast.alice_admin)

    client.post(f"/team/{cast.alice_member.pk}/role/", {"role": "admin"})
    response = client.post(f"/team/{cast.alice_admin.pk}/role/", {"role": "member"})

    assert response.status_code == 302
    cast.alice_admin.refresh_from_db()
    cast.alice_member.refresh_from_db()
    assert (cast.alice_admin.role, cast.alice_member.role) == ("member", "admin")
    # Now a member, the former admin may no longer manage people.
    assert client.post(f"/team/{cast.alice_viewer.pk}/deactivate/").status_code == 403


def test_an_admin_deactivates_a_user_who_then_cannot_log_in(cast):
    client = client_for(cast.alice_admin)

    response = client.post(f"/team/{cast.alice_member.pk}/deactivate/")

    assert response.status_code == 302
    assert response["Location"] == "/team/"
    cast.alice_member.refresh_from_db()
    assert not cast.alice_member.is_active
    assert AuditEvent.objects.get(action="user.deactivated").object_id == str(cast.alice_member.pk)
    assert not Client().login(username="member@alice.example", password=PASSWORD)
    page = client.get("/team/").content.decode()
    assert "member@alice.example can no longer log in" in page
    assert "deactivated" in page


@pytest.mark.parametrize("who", ["alice_member", "alice_viewer"])
def test_members_and_viewers_may_not_change_roles_or_deactivate(cast, who):
    client = client_for(getattr(cast, who))
    target = cast.alice_viewer if who == "alice_member" else cast.alice_member

    assert client.post(f"/team/{target.pk}/role/", {"role": "admin"}).status_code == 403
    assert client.post(f"/team/{target.pk}/deactivate/").status_code == 403
    target.refresh_from_db()
    assert target.is_active and target.role != User.Role.ADMIN
    assert not AuditEvent.objects.filter(
        action__in=["user.role_changed", "user.deactivated"]
    ).exists()


def test_another_organizations_user_is_404(cast):
    bob = client_for(cast.bob_admin)

    assert bob.post(f"/team/{cast.alice_member.pk}/role/", {"role": "viewer"}).status_code == 404
    assert bob.post(f"/team/{cast.alice_member.pk}/deactivate/").status_code == 404
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.role == User.Role.MEMBER and cast.alice_member.is_active
    # A reseller admin does not manage its customers' people either.
    alice = client_for(cast.alice_admin)
    assert alice.post(f"/team/{cast.carol_viewer.pk}/deactivate/").status_code == 404
    cast.carol_viewer.refresh_from_db()
    assert cast.carol_viewer.is_active


@pytest.mark.parametrize("user_id", ["not-a-uuid", str(uuid.UUID(int=1))])
def test_a_bad_user_id_is_404(cast, user_id):
    client = client_for(cast.alice_admin)

    assert client.post(f"/team/{user_id}/role/", {"role": "viewer"}).status_code == 404
    assert client.post(f"/team/{user_id}/deactivate/").status_code == 404


def test_role_and_deactivate_are_posts(cast):
    client = client_for(cast.alice_admin)

    assert client.get(f"/team/{cast.alice_member.pk}/role/").status_code == 405
    assert client.get(f"/team/{cast.alice_member.pk}/deactivate/").status_code == 405
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.is_active and cast.alice_member.role == User.Role.MEMBER


def test_the_team_page_needs_a_bounded_number_of_queries(cast, django_assert_max_num_queries):
    client = client_for(cast.alice_member)
    client.get("/team/")
    with CaptureQueriesContext(connection) as few:
        client.get("/team/")
    for n in range(40):
        UserFactory(organization=cast.alice_reseller, email=f"p{n:02d}@alice.example")

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get("/team/")

    assert len(team_emails(response.content.decode())) == 25
    with CaptureQueriesContext(connection) as many:
        client.get("/team/")
    assert len(many) == len(few)
