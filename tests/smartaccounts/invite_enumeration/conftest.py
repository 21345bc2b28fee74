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
from datetime import UTC, datetime

from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from smartaccounts.models import User

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


def row_with_raw(rows: list[str], email: str) -> str:
    found = [row for row in rows if email in row]
    assert len(found) == 1, (email, rows)
    return found[0]


def posted_id(row: str, what: str) -> dict[str, str]:
    """The body the row's `what` button posts to /team/invitations/<what>/."""
    form = re.search(rf'action="/team/invitations/{what}/".*?</form>', row, re.S)
    assert form is not None, row
    return {"invitation": re.search(r'name="invitation" value="([^"]+)"', form[0])[1]}
