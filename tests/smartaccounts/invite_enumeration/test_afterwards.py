"""After an invitation: the team page, the history and its CSV show both alike (S27)."""

import re
import uuid

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core import mail

from smartaccounts.models import AuditEvent, User

from .conftest import (
    CANCEL,
    NEW_ADDRESS,
    PINNED,
    RESEND,
    client_for,
    csv_of,
    csv_row_with,
    invitation_rows,
    member_emails,
    post_invite,
    posted_id,
    row_with,
    row_with_raw,
    rows_of,
    snapshot,
)

pytestmark = pytest.mark.django_db


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
    assert cancelled_new == (302, "/team/", f"The invitation of {NEW_ADDRESS} is withdrawn.")
    assert cancelled_taken == (
        302,
        "/team/",
        f"The invitation of {existing.email} is withdrawn.",
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
    from orders.intake import CustomerData, LineData, OrderData, place_order
    from orders.services import unlock_order
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
