"""An invitation answers alike whether or not the address has an account elsewhere (S27)."""

import pytest
from django.core import mail

from notifications.models import OutboundEmail
from smartaccounts.models import AuditEvent, User

from .conftest import NEW_ADDRESS, invite, snapshot

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("inviter", "existing"),
    [
        ("alice_admin", "bob_admin"),  # a reseller's admin, another reseller's person
        ("alice_admin", "carol_admin"),  # a reseller's admin, a customer's person
        ("carol_admin", "alice_member"),  # a customer's admin, a reseller's person
    ],
)
def test_another_organizations_address_is_answered_as_a_new_one(
    cast, django_capture_on_commit_callbacks, inviter, existing
):
    inviter, existing = getattr(cast, inviter), getattr(cast, existing)
    before = snapshot(existing)
    members_before = set(User.objects.filter(organization=inviter.organization))

    new, new_said, new_queries = invite(inviter, NEW_ADDRESS, django_capture_on_commit_callbacks)
    new_rows = OutboundEmail.objects.count()
    new_events = AuditEvent.objects.count()
    taken, taken_said, taken_queries = invite(
        inviter, existing.email.upper(), django_capture_on_commit_callbacks
    )

    # The same answer, byte for byte but for the address the admin typed.
    assert (taken.status_code, taken["Location"]) == (new.status_code, new["Location"])
    assert (taken.status_code, taken["Location"]) == (302, "/team/")
    assert taken.content == new.content
    assert new_said == f"Invitation sent to {NEW_ADDRESS}."
    assert taken_said == new_said.replace(NEW_ADDRESS, existing.email)
    # The same work: one outbox row and one audit event each, about as many queries.
    assert OutboundEmail.objects.count() - new_rows == new_rows == 1
    assert AuditEvent.objects.count() - new_events == new_events == 1
    assert abs(taken_queries - new_queries) <= 2, (taken_queries, new_queries)
    # The existing account is untouched, and joins nobody.
    assert snapshot(existing) == before
    members_now = set(User.objects.filter(organization=inviter.organization))
    assert members_now - members_before == {User.objects.get(email=NEW_ADDRESS)}


def test_the_existing_person_is_told_by_email_and_the_inviter_learns_nothing(
    cast, django_capture_on_commit_callbacks
):
    cast.alice_admin.full_name = "Ada Admin"
    cast.alice_admin.save()

    invite(cast.alice_admin, cast.bob_admin.email, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [cast.bob_admin.email]
    assert message.subject == "Alice Reseller tried to invite you to the Cloud Licensing portal"
    for text in (message.body, message.alternatives[0][0]):
        assert "Ada Admin (alice@alice.example)" in text
        assert "Alice Reseller" in text
        assert "already has an account" in text
        assert "invite another address" in text
        assert "/invitation/" not in text  # nothing to accept
        assert "Bob Reseller" not in text  # the person's own organization is not named
    # Recorded as any invitation; only the vendor's audit trail sees the private mark.
    event = AuditEvent.objects.get()
    assert event.action == "user.invited"
    assert event.object_id == str(cast.bob_admin.pk) and event.account is None
    assert event.organization == cast.alice_reseller
    assert event.data == {"email": cast.bob_admin.email, "role": "member", "_elsewhere": True}


def test_a_deactivated_account_elsewhere_is_answered_the_same_and_gets_no_mail(
    cast, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=cast.bob_admin.pk).update(is_active=False)

    new, _, _ = invite(cast.alice_admin, NEW_ADDRESS, django_capture_on_commit_callbacks)
    mail.outbox = []
    taken, said, _ = invite(
        cast.alice_admin, cast.bob_admin.email, django_capture_on_commit_callbacks
    )

    assert (taken.status_code, taken["Location"], taken.content) == (
        new.status_code,
        new["Location"],
        new.content,
    )
    assert said == f"Invitation sent to {cast.bob_admin.email}."
    assert mail.outbox == []
    assert not User.objects.get(pk=cast.bob_admin.pk).is_active


def test_someone_already_in_the_admins_own_team_is_said_plainly(
    cast, django_capture_on_commit_callbacks
):
    """The admin sees their own team anyway: no secret to keep there."""
    response, _, _ = invite(
        cast.alice_admin, cast.alice_member.email, django_capture_on_commit_callbacks
    )

    assert response.status_code == 400
    assert "member@alice.example is already in your team." in response.content.decode()
    assert mail.outbox == []
    assert not OutboundEmail.objects.exists()


@pytest.mark.parametrize("name", ["Ada\r\nBcc: victim@example.org", "Ada\nLovelace", "Ada\x00"])
def test_a_line_break_in_the_invited_persons_name_is_refused(
    cast, django_capture_on_commit_callbacks, name
):
    """Their name reaches the subject of the invitations they send later (S24)."""
    users = User.objects.count()

    response, _, _ = invite(
        cast.alice_admin, NEW_ADDRESS, django_capture_on_commit_callbacks, full_name=name
    )

    assert response.status_code == 400
    assert 'id="id_full_name_errors"' in response.content.decode()
    assert User.objects.count() == users
    assert not OutboundEmail.objects.exists()
    assert mail.outbox == []
