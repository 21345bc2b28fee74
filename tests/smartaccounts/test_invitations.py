"""Team invitations say who invited, to which organization, with which role; the link lets the
invited person choose a password once and lands them in the portal, signed in. (The customer's
first-contact invitation, sent by an order's unlock, is in tests/orders/test_customer_email.py.)"""

import re

import pytest
from django.core import mail
from django.test import Client

from notifications.models import OutboundEmail
from notifications.services import deliver_email
from smartaccounts.models import User

pytestmark = pytest.mark.django_db

SITE = "https://licensing.example.test"
INVITATION_LINK = re.compile(re.escape(SITE) + r"(/invitation/[^/\s\"<>]+/[^/\s\"<>]+/)")
PASSWORD = "a-long-new-passphrase-42"

ROLE_WORDS = {"admin": "an administrator", "member": "a member", "viewer": "a viewer"}


def invite(inviter: User, email: str, role: str, capture) -> mail.EmailMessage:
    client = Client()
    client.force_login(inviter)
    with capture(execute=True):
        response = client.post("/team/", {"email": email, "role": role})
    assert response.status_code == 302, response.content
    assert len(mail.outbox) == 1
    return mail.outbox[0]


@pytest.mark.parametrize("role", ["member", "admin", "viewer"])
@pytest.mark.parametrize(
    ("inviter_name", "organization"),
    [("alice_admin", "Alice Reseller"), ("carol_admin", "Carol Corp")],
)
def test_the_invitation_names_the_inviter_the_organization_and_the_role(
    cast, django_capture_on_commit_callbacks, role, inviter_name, organization
):
    inviter = getattr(cast, inviter_name)
    inviter.full_name = "Ada Inviter"
    inviter.save()

    message = invite(inviter, "new.person@example.org", role, django_capture_on_commit_callbacks)

    assert message.to == ["new.person@example.org"]
    assert (
        message.subject
        == f"Ada Inviter invited you to {organization} on the Cloud Licensing portal"
    )
    html = message.alternatives[0][0]
    for text in (message.body, html):
        assert f"Ada Inviter ({inviter.email}) of {organization}" in text
        assert f"join {organization}" in text or f"join <strong>{organization}</strong>" in text
        assert ROLE_WORDS[role] in text
        # Not the customer's first-contact wording.
        assert "now has licenses" not in text
        assert "waiting" not in text
        assert "administrator" not in text or role == "admin"
    assert len(INVITATION_LINK.findall(message.body)) == 1
    row = OutboundEmail.objects.get(kind="invitation")
    assert row.context["inviter_organization"] == organization


def test_each_role_is_told_what_it_may_do(cast, django_capture_on_commit_callbacks):
    said = {}
    for role in ("viewer", "member", "admin"):
        mail.outbox = []
        said[role] = invite(
            cast.alice_admin, f"{role}@example.org", role, django_capture_on_commit_callbacks
        ).body

    assert "without changing them" in said["viewer"]
    assert "unlock orders" in said["member"] and "API keys" not in said["member"]
    assert "invite colleagues" in said["admin"] and "API keys" in said["admin"]


def test_an_inviter_without_a_name_is_named_by_address(cast, django_capture_on_commit_callbacks):
    message = invite(
        cast.alice_admin, "new.person@example.org", "member", django_capture_on_commit_callbacks
    )

    assert message.subject.startswith("alice@alice.example invited you to Alice Reseller")
    assert "alice@alice.example of Alice Reseller invited you" in message.body


@pytest.mark.parametrize(
    ("inviter_name", "lands_on"), [("alice_admin", "/customers/"), ("carol_admin", "/accounts/")]
)
def test_the_invited_person_sets_a_password_once_and_lands_in_the_portal(
    cast, django_capture_on_commit_callbacks, inviter_name, lands_on
):
    message = invite(
        getattr(cast, inviter_name),
        "new.person@example.org",
        "member",
        django_capture_on_commit_callbacks,
    )
    link = INVITATION_LINK.search(message.body)[1]

    browser = Client()
    form = browser.get(link, follow=True)
    assert "Choose a password for <strong>new.person@example.org</strong>" in form.content.decode()
    saved = browser.post(
        form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert saved.status_code == 302 and saved["Location"] == "/"
    home = browser.get("/", follow=True)

    assert home.status_code == 200
    assert home.redirect_chain[-1][0].startswith(lands_on)
    assert home.wsgi_request.user.email == "new.person@example.org"
    assert "Welcome! Your password is set" in home.content.decode()
    assert User.objects.get(email="new.person@example.org").has_usable_password()
    assert "no longer works" in Client().get(link, follow=True).content.decode()


def test_a_member_who_already_signed_up_gets_no_stale_invitation(
    cast, django_capture_on_commit_callbacks
):
    """The row is rendered when it is sent: nothing goes out for someone who signed up since."""
    client = Client()
    client.force_login(cast.alice_admin)
    response = client.post("/team/", {"email": "quick@example.org", "role": "member"})
    assert response.status_code == 302
    user = User.objects.get(email="quick@example.org")
    user.set_password(PASSWORD)
    user.save()

    row = OutboundEmail.objects.get(kind="invitation")
    assert deliver_email(row_id=str(row.pk)) is False
    assert mail.outbox == []


def test_a_line_break_in_the_inviters_name_does_not_stick_the_invitation(
    cast, django_capture_on_commit_callbacks
):
    cast.alice_admin.full_name = "Ada\r\nBcc: victim@example.org"
    cast.alice_admin.save()

    message = invite(
        cast.alice_admin, "new.person@example.org", "member", django_capture_on_commit_callbacks
    )

    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.recipients() == ["new.person@example.org"]
    assert OutboundEmail.objects.get(kind="invitation").sent_at is not None
