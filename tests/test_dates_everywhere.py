"""One way of writing times everywhere: minutes at most and the zone named (UTC), on the
portal's pages (the team's last login) and in the back office, which Django formats itself
(licensing_portal/formats/en)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.test import Client

from .factories import AuditEventFactory

WHEN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_team_page_names_the_zone_of_a_last_login(cast):
    member = cast.alice_admin
    member.last_login = datetime(2031, 3, 7, 8, 51, 12, tzinfo=UTC)
    member.save(update_fields=["last_login"])
    client = Client()
    client.force_login(member)  # sets last_login to now; the other members keep theirs

    page = client.get("/team/").content.decode()

    assert re.search(rf'<td class="date">{WHEN}</td>', page), page
    assert not re.search(r"\d{2}:\d{2}:\d{2}", page)


def test_the_back_office_writes_times_as_the_portal_does(cast):
    AuditEventFactory(created_at=datetime(2031, 3, 7, 8, 51, 12, tzinfo=UTC))

    page = _client(cast.vendor_staff).get("/admin/smartaccounts/auditevent/").content.decode()

    assert "2031-03-07 08:51 UTC" in page, page
