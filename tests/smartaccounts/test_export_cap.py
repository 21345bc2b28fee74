"""Every CSV export holds at most EXPORT_MAX_ROWS items: one more and the download is refused
before any row is read, with a page that says to narrow the filter (a client asking for JSON
gets a problem+json `validation_error`). Nothing streams long enough to meet the worker timeout."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ..factories import AuditEventFactory, LicenseFactory, ServerFactory

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture
def exports(cast, settings) -> dict[str, str]:
    """Each export of Carol's account (and Alice's renewals) with LIMIT items exactly."""
    settings.EXPORT_MAX_ROWS = LIMIT
    account = cast.carol_customer.smart_account
    soon = timezone.now() + timedelta(days=30)
    LicenseFactory.create_batch(LIMIT, account=account, care_ends_at=soon)
    ServerFactory.create_batch(LIMIT, account=account)
    AuditEventFactory.create_batch(LIMIT, account=account, action="server.renamed")
    return {
        "licenses": f"/accounts/{account.pk}/licenses.csv",
        "servers": f"/accounts/{account.pk}/servers.csv",
        "history": f"/accounts/{account.pk}/history/?action=server.renamed&format=csv",
        "renewals": "/renewals/?format=csv",
    }


@pytest.fixture
def alice(cast) -> Client:
    client = Client()
    client.force_login(cast.alice_admin)
    return client


def add_one_more(cast, name: str) -> None:
    account = cast.carol_customer.smart_account
    soon = timezone.now() + timedelta(days=30)
    {
        "licenses": lambda: LicenseFactory(account=account),
        "servers": lambda: ServerFactory(account=account),
        "history": lambda: AuditEventFactory(account=account, action="server.renamed"),
        "renewals": lambda: LicenseFactory(account=account, care_ends_at=soon),
    }[name]()


@pytest.mark.parametrize("name", ["licenses", "servers", "history", "renewals"])
def test_an_export_at_the_limit_downloads(cast, exports, alice, name):
    response = alice.get(exports[name])

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) >= 1 + LIMIT  # the header and a row per item (or more: servers)


@pytest.mark.parametrize("name", ["licenses", "servers", "history", "renewals"])
def test_one_more_is_refused_with_a_page_that_says_to_narrow_the_filter(cast, exports, alice, name):
    add_one_more(cast, name)

    with CaptureQueriesContext(connection) as captured:
        response = alice.get(exports[name])

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "private, no-store"
    page = response.content.decode()
    assert "This export is too large" in page
    assert f"more than {LIMIT:,} rows" in page and "Narrow the filter" in page
    assert "format=csv" not in page.split("Back to the list")[0].rsplit('href="', 1)[1]
    # Counted, never read: no statement selects more than LIMIT + 1 of anything.
    assert all("LIMIT" in q["sql"] for q in captured.captured_queries if "COUNT" in q["sql"])


def test_a_client_asking_for_json_gets_a_problem(cast, exports, alice):
    add_one_more(cast, "history")

    response = alice.get(exports["history"], HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error" and body["max_rows"] == LIMIT
    assert "Narrow the filter" in body["detail"]


def test_the_default_limit_is_documented_and_generous(settings):
    from licensing_portal.settings import base

    assert base.EXPORT_MAX_ROWS == 100_000
