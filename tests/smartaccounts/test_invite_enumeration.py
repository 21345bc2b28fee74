"""Nothing reveals whether an account exists (SECURITY.md S27): inviting an address that
already has an account in another organization answers exactly as inviting a new address —
same status, same redirect, same body, same message, the same work (one outbox row, one audit
event) — and changes nothing of that account. Its owner is told by e-mail instead.

Afterwards the inviting organization still sees both alike: the team page lists both under
"Invitations sent" (and neither among the members), the account history and its CSV show the
same "Invited …" line, and re-sending, re-inviting and cancelling answer the same."""

import csv
import io
import re
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications.models import OutboundEmail
from smartaccounts.models import AuditEvent, User

pytestmark = pytest.mark.django_db

NEW_ADDRESS = "new.person@example.org"
PINNED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RESEND, CANCEL = "/team/invitations/resend/", "/team/invitations/cancel/"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def invite(inviter: User, email: str, capture, **extra: str) -> tuple[object, str, int]:
    """POST the team page's invitation form; returns (response, its message, queries run)."""
    client = Client()
    client.force_login(inviter)
    # The queries of the answer itself; the e-mail goes out after it (in a worker).
    with capture(execute=True), CaptureQueriesContext(connection) as queries:
        response = client.post("/team/", {"email": email, "role": "member", **extra})
    said = [str(m) for m in get_messages(response.wsgi_request)]
    return response, " ".join(said), len(queries)


def snapshot(user: User) -> tuple:
    return tuple(
        User.objects.filter(pk=user.pk)
        .values_list("organization_id", "role", "is_active", "password", "full_name", "email")
        .get()
    )


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


# --- Afterwards: the team page, the history and its CSV show both alike ----------------------


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_invite(client: Client, email: str, role: str = "member") -> object:
    return client.post("/team/", {"email": email, "role": role})


def section(html: str, name: str) -> str:
    """The section's table body; "" when the page has no such section."""
    found = re.search(rf'<section id="{name}">.*?<tbody>(.*?)</tbody>.*?</section>', html, re.S)
    return found[1] if found else ""


def rows_of(html: str) -> list[str]:
    return re.findall(r"<tr>.*?</tr>", html, re.S)


def row_with(rows: list[str], email: str) -> str:
    """The one row naming `email`, with the address and ids replaced by placeholders."""
    found = [row for row in rows if email in row]
    assert len(found) == 1, (email, rows)
    return UUID.sub("<id>", found[0].replace(email, "<email>"))


def invitation_rows(client: Client) -> list[str]:
    return rows_of(section(client.get("/team/").content.decode(), "invitations"))


def member_emails(client: Client) -> list[str]:
    members = section(client.get("/team/").content.decode(), "members")
    return re.findall(r"<tr>\s*<td>([^<\s]+@[^<\s]+)", members)


def csv_of(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def csv_row_with(rows: list[dict[str, str]], email: str) -> dict[str, str]:
    found = [row for row in rows if row["detail_email"] == email]
    assert len(found) == 1, (email, rows)
    return {
        key: UUID.sub("<id>", value.replace(email, "<email>")) for key, value in found[0].items()
    }


@pytest.mark.parametrize(
    ("inviter", "existing"),
    [
        ("alice_admin", "bob_admin"),
        ("alice_admin", "carol_admin"),
        ("carol_admin", "alice_member"),
    ],
)
def test_the_team_page_lists_both_invitations_alike_and_neither_as_a_member(
    cast, django_capture_on_commit_callbacks, inviter, existing
):
    inviter, existing = getattr(cast, inviter), getattr(cast, existing)
    client = client_for(inviter)
    members_before = member_emails(client)
    before = snapshot(existing)

    with time_machine.travel(PINNED, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert post_invite(client, NEW_ADDRESS, "viewer").status_code == 302
        assert post_invite(client, existing.email, "viewer").status_code == 302

    rows = invitation_rows(client)
    assert len(rows) == 2
    assert row_with(rows, NEW_ADDRESS) == row_with(rows, existing.email)
    shown = row_with(rows, NEW_ADDRESS)
    assert "Viewer" in shown and "2026-03-02 09:30" in shown
    assert (inviter.full_name or inviter.email) in shown
    # The members are the people who signed up: neither invitee, as before.
    assert member_emails(client) == members_before
    # What a colleague without admin rights sees is alike too.
    colleague = cast.alice_viewer if inviter.organization == cast.alice_reseller else None
    if colleague is not None:
        theirs = invitation_rows(client_for(colleague))
        assert row_with(theirs, NEW_ADDRESS) == row_with(theirs, existing.email)
    assert snapshot(existing) == before


@pytest.mark.parametrize("viewer", ["carol_admin", "carol_viewer", "alice_admin"])
def test_the_account_history_and_its_csv_show_both_invitations_alike(
    cast, django_capture_on_commit_callbacks, viewer
):
    """A customer's admin invites a new address and a partner's person: the customer's own
    people and its reseller read the same line for each, in the page and in the CSV."""
    existing = cast.alice_member
    before = snapshot(existing)
    account = cast.carol_customer.smart_account
    inviter = client_for(cast.carol_admin)
    with time_machine.travel(PINNED, tick=False), django_capture_on_commit_callbacks(execute=True):
        post_invite(inviter, NEW_ADDRESS)
        post_invite(inviter, existing.email)

    reader = client_for(getattr(cast, viewer))
    url = f"/accounts/{account.pk}/history/"
    page = reader.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    rows = rows_of(re.search(r"<tbody>(.*?)</tbody>", html, re.S)[1])
    assert row_with(rows, NEW_ADDRESS) == row_with(rows, existing.email)
    assert f"Invited {NEW_ADDRESS} as member" in row_with(rows, NEW_ADDRESS).replace(
        "<email>", NEW_ADDRESS
    )
    assert "elsewhere" not in html.lower()
    # The event filter offers one kind of invitation, and it finds both.
    assert html.count('<option value="user.invit') == 1
    found = reader.get(url, {"action": "user.invited"}).content.decode()
    assert NEW_ADDRESS in found and existing.email in found

    exported = reader.get(url, {"format": "csv"})
    assert exported.status_code == 200
    rows_csv = csv_of(exported)
    new_row, taken_row = (
        csv_row_with(rows_csv, NEW_ADDRESS),
        csv_row_with(rows_csv, existing.email),
    )
    assert new_row == taken_row
    assert new_row["action"] == "user.invited"
    assert new_row["action_in_words"] == "Invited <email> as member"
    assert new_row["more_details"] == ""
    assert snapshot(existing) == before


@pytest.mark.parametrize("existing", ["bob_admin", "carol_admin"])
def test_reinviting_resending_and_cancelling_answer_alike(
    cast, django_capture_on_commit_callbacks, existing
):
    existing = getattr(cast, existing)
    before = snapshot(existing)
    client = client_for(cast.alice_admin)
    with django_capture_on_commit_callbacks(execute=True):
        post_invite(client, NEW_ADDRESS)
        post_invite(client, existing.email)
    mail.outbox = []

    def answer(response) -> tuple:
        said = [str(m) for m in get_messages(response.wsgi_request)]  # unread ones pile up
        return response.status_code, response["Location"], said[-1]

    # Invited again through the form, with another role: both are sent again.
    with django_capture_on_commit_callbacks(execute=True):
        again_new = answer(post_invite(client, NEW_ADDRESS, "admin"))
        again_taken = answer(post_invite(client, existing.email, "admin"))
    assert again_new == (302, "/team/", f"Invitation sent to {NEW_ADDRESS}.")
    assert again_taken == (302, "/team/", f"Invitation sent to {existing.email}.")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([NEW_ADDRESS, existing.email])
    rows = invitation_rows(client)
    assert len(rows) == 2 and "Admin" in row_with(rows, NEW_ADDRESS)
    assert row_with(rows, NEW_ADDRESS) == row_with(rows, existing.email)

    # Re-sent from the list: the same answer, each address e-mailed again.
    mail.outbox = []
    resend = {
        email: posted_id(row_with_raw(rows, email), "resend")
        for email in (NEW_ADDRESS, existing.email)
    }
    with django_capture_on_commit_callbacks(execute=True):
        resent_new = answer(client.post(RESEND, resend[NEW_ADDRESS]))
        resent_taken = answer(client.post(RESEND, resend[existing.email]))
    assert resent_new == (302, "/team/", f"Invitation sent to {NEW_ADDRESS}.")
    assert resent_taken == (302, "/team/", f"Invitation sent to {existing.email}.")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([NEW_ADDRESS, existing.email])
    assert "tried to invite you" in next(m for m in mail.outbox if m.to == [existing.email]).subject

    # Cancelled: both leave the list alike, and the new address's link no longer works.
    rows = invitation_rows(client)
    cancel = {
        email: posted_id(row_with_raw(rows, email), "cancel")
        for email in (NEW_ADDRESS, existing.email)
    }
    cancelled_new = answer(client.post(CANCEL, cancel[NEW_ADDRESS]))
    cancelled_taken = answer(client.post(CANCEL, cancel[existing.email]))
    assert cancelled_new == (302, "/team/", f"The invitation of {NEW_ADDRESS} is cancelled.")
    assert cancelled_taken == (
        302,
        "/team/",
        f"The invitation of {existing.email} is cancelled.",
    )
    assert invitation_rows(client) == []
    assert client.post(CANCEL, cancel[NEW_ADDRESS]).status_code == 404
    assert client.post(RESEND, cancel[existing.email]).status_code == 404
    pending = User.objects.get(email=NEW_ADDRESS)
    assert not pending.is_active and not pending.has_usable_password()
    events = AuditEvent.objects.filter(action="user.invitation_cancelled")
    assert sorted(e.data["email"] for e in events) == sorted([NEW_ADDRESS, existing.email])
    # The existing person's account never changed.
    assert snapshot(existing) == before


def row_with_raw(rows: list[str], email: str) -> str:
    found = [row for row in rows if email in row]
    assert len(found) == 1, (email, rows)
    return found[0]


def posted_id(row: str, what: str) -> dict[str, str]:
    """The body the row's `what` button posts to /team/invitations/<what>/."""
    form = re.search(rf'action="/team/invitations/{what}/".*?</form>', row, re.S)
    assert form is not None, row
    return {"invitation": re.search(r'name="invitation" value="([^"]+)"', form[0])[1]}


def test_a_pending_invitees_id_is_as_unknown_to_the_member_tools_as_the_existing_persons(
    cast, django_capture_on_commit_callbacks
):
    """The CSV carries the invited user's id: the role and deactivate tools answer 404 for a
    pending invitee as for the other organization's person, and change nothing."""
    client = client_for(cast.alice_admin)
    with django_capture_on_commit_callbacks(execute=True):
        post_invite(client, NEW_ADDRESS)
        post_invite(client, cast.bob_admin.email)
    pending = User.objects.get(email=NEW_ADDRESS)
    before = snapshot(pending), snapshot(cast.bob_admin)

    for user in (pending, cast.bob_admin):
        assert client.post(f"/team/{user.pk}/role/", {"role": "viewer"}).status_code == 404
        assert client.post(f"/team/{user.pk}/deactivate/").status_code == 404
    assert (snapshot(pending), snapshot(cast.bob_admin)) == before


def test_other_organizations_invitations_are_not_listed_or_cancellable(
    cast, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_invite(client_for(cast.alice_admin), NEW_ADDRESS)
    rows = invitation_rows(client_for(cast.alice_admin))
    cancel = posted_id(rows[0], "cancel")
    bob, member = client_for(cast.bob_admin), client_for(cast.alice_member)
    alice = client_for(cast.alice_admin)

    assert invitation_rows(bob) == []
    for url in (CANCEL, RESEND):
        assert bob.post(url, cancel).status_code == 404
        assert member.post(url, cancel).status_code == 403
        assert alice.get(url, cancel).status_code == 405
        for bad in ({"invitation": "not-a-uuid"}, {"invitation": str(uuid.UUID(int=1))}, {}):
            assert alice.post(url, bad).status_code == 404
    assert User.objects.get(email=NEW_ADDRESS).is_active
    assert not AuditEvent.objects.exclude(action="user.invited").exists()
    assert AuditEvent.objects.count() == 1


def test_an_unlock_invites_a_customer_contact_the_same_whether_or_not_the_address_is_taken(
    cast, django_capture_on_commit_callbacks
):
    """The partner reads the customer's history: the first-contact invitation an unlock sends
    shows alike for a new address and for one with an account elsewhere."""
    from orders.services import CustomerData, LineData, OrderData, place_order, unlock_order
    from smartaccounts.actors import Actor

    taken = cast.bob_admin.email
    before = snapshot(cast.bob_admin)
    lines = []
    for email, reference in ((NEW_ADDRESS, "PO-NEW"), (taken, "PO-TAKEN")):
        with time_machine.travel(PINNED, tick=False):
            order, _ = place_order(
                placed_by=cast.alice_reseller,
                data=OrderData(
                    reference=reference,
                    customer=CustomerData(name=f"Customer {reference}", email=email),
                    lines=[LineData(product="CALL_RECORDING", quantity=5, kind="perpetual")],
                ),
                actor=Actor.system("tests"),
            )
            with django_capture_on_commit_callbacks(execute=True):
                unlock_order(order=order, actor=Actor.system("tests"))
        events = AuditEvent.objects.filter(account=order.account, action="user.invited")
        assert events.count() == 1
        lines.append(events.get().data["email"] == email)
    assert lines == [True, True]
    assert snapshot(cast.bob_admin) == before
    told = [m for m in mail.outbox if taken in m.to]
    assert len(told) == 1 and "Customer PO-TAKEN" not in told[0].subject
