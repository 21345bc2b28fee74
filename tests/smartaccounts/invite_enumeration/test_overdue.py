"""An invitation nobody takes up (issue 20, item 12): an address with an account in another
organization can never join, yet the Team page may not say which address that is (S27). So
every invitation waiting a week is flagged alike with the reasons it may never be taken up,
the page explains the one-organization rule, and the admin withdraws any invitation (audited)."""

from datetime import timedelta

import pytest
import time_machine

from smartaccounts.models import AuditEvent

from .conftest import (
    CANCEL,
    NEW_ADDRESS,
    PINNED,
    client_for,
    invitation_rows,
    post_invite,
    posted_id,
    row_with,
    row_with_raw,
)

pytestmark = pytest.mark.django_db

OVERDUE_NOTE = "Not taken up after 9 days: the address may be wrong, or already in use"


@pytest.fixture
def both_invited(cast, django_capture_on_commit_callbacks):
    client = client_for(cast.alice_admin)
    with time_machine.travel(PINNED, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert post_invite(client, NEW_ADDRESS, "viewer").status_code == 302
        assert post_invite(client, cast.bob_admin.email, "viewer").status_code == 302
    return client


def test_a_week_old_invitation_is_flagged_alike_for_both(cast, both_invited):
    with time_machine.travel(PINNED + timedelta(days=9, hours=1), tick=False):
        rows = invitation_rows(both_invited)
        page = both_invited.get("/team/").content.decode()

    assert OVERDUE_NOTE in row_with(rows, NEW_ADDRESS)
    assert row_with(rows, NEW_ADDRESS) == row_with(rows, cast.bob_admin.email)
    assert "if it already has an account with another organization, it cannot join" in page


def test_a_fresh_invitation_is_not_flagged(cast, both_invited):
    with time_machine.travel(PINNED + timedelta(days=2), tick=False):
        rows = invitation_rows(both_invited)

    assert "Not taken up" not in row_with(rows, NEW_ADDRESS)
    assert "Withdraw" in row_with(rows, cast.bob_admin.email)


def test_the_admin_withdraws_the_invitation_of_an_address_in_use_elsewhere(cast, both_invited):
    rows = invitation_rows(both_invited)
    body = posted_id(row_with_raw(rows, cast.bob_admin.email), "cancel")

    response = both_invited.post(CANCEL, body)

    assert response.status_code == 302
    remaining = invitation_rows(both_invited)
    assert not any(cast.bob_admin.email in row for row in remaining)
    event = AuditEvent.objects.get(action="user.invitation_cancelled")
    assert event.data["email"] == cast.bob_admin.email
    assert event.actor_user == cast.alice_admin
    cast.bob_admin.refresh_from_db()
    assert cast.bob_admin.is_active
