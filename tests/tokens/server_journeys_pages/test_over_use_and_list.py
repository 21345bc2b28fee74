"""Over-use on the server page and the list; the servers list: search, filters, CSV."""

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from smartaccounts.models import License
from tokens import services
from tokens.models import Server

from ...factories import AssignmentFactory, ServerFactory
from .conftest import SYSTEM, client_for, listed, request_file, squash, upload

pytestmark = pytest.mark.django_db


def test_the_server_page_flags_use_above_what_it_holds(cast, overused):
    page = client_for(cast.carol_viewer).get(f"/servers/{overused.pk}/").content.decode()

    header = squash(re.search(r"<h1>(.*?)</h1>", page, re.S)[1])
    assert "over use: Call Recording 8 in use, holds 6" in header
    alert = squash(re.search(r'<article[^>]*id="over-use"[^>]*>(.*?)</article>', page, re.S)[1])
    assert "8 channels of Call Recording in use but holds 6" in alert
    assert "8: 2 over" in squash(page)


def test_the_servers_list_flags_the_row(cast, account, overused, lab):
    page = client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/").content.decode()

    rows = {
        squash(re.search(r"<strong>(.*?)</strong>", row, re.S)[1]): squash(row)
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        if "<strong>" in row
    }
    assert "over use: Call Recording 8 in use, holds 6" in rows["PBX-Busy"]
    assert "over use" not in rows["PBX-Lab"]


def test_within_what_it_holds_shows_no_badge(cast, overused):
    Server.objects.filter(pk=overused.pk).update(reported_usage={"CALL_RECORDING": 6})

    page = client_for(cast.alice_member).get(f"/servers/{overused.pk}/").content.decode()

    assert "over use" not in page and 'id="over-use"' not in page


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["milan-prod", "Naples", "Rome-test", "Turin"]),
        ("?sort=-name", ["Turin", "Rome-test", "Naples", "milan-prod"]),
        ("?sort=-last_sync", ["milan-prod", "Rome-test", "Naples", "Turin"]),
        ("?sort=last_sync", ["Turin", "Naples", "Rome-test", "milan-prod"]),
        ("?sort=state", ["milan-prod", "Rome-test", "Turin", "Naples"]),
        ("?sort=nonsense", ["milan-prod", "Naples", "Rome-test", "Turin"]),
        ("?q=ROME", ["Rome-test"]),
        ("?q=milan.local", ["milan-prod"]),
        ("?purpose=production", ["milan-prod", "Turin"]),
        ("?purpose=production&state=pending", ["Turin"]),
        ("?state=all&sort=-last_sync", ["milan-prod", "Rome-test", "Naples", "Old", "Turin"]),
        ("?state=deactivated", ["Old"]),
        ("?q=nothing-like-it", []),
    ],
)
def test_the_list_searches_filters_and_sorts(cast, account, fleet, query, names):
    assert listed(client_for(cast.alice_viewer), account, query) == names


def test_sort_headers_keep_the_filters_and_say_how_the_list_is_sorted(cast, account, fleet):
    page = (
        client_for(cast.alice_member)
        .get(f"/accounts/{account.pk}/servers/?purpose=production&sort=-last_sync&page=1")
        .content.decode()
    )

    header = re.search(r'<th scope="col" aria-sort="descending"><a href="([^"]+)"', page)
    assert header is not None
    assert "purpose=production" in header[1] and "sort=last_sync" in header[1]
    assert "page=" not in header[1]


def test_the_csv_export_has_flat_columns_and_inert_cells(cast, account, fleet, perpetual):
    evil = ServerFactory(
        account=account,
        name='=HYPERLINK("http://evil.example","x")',
        state=Server.State.ACTIVE,
        hostname="+cmd|' /C calc'!A0",
        reported_version="@SUM(1)",
        reported_usage={"CALL_RECORDING": 5},
    )
    AssignmentFactory(server=evil, license=perpetual, quantity=3)
    License.objects.filter(pk=perpetual.pk).update(assigned=3)

    response = client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/servers.csv?state=all")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["name"] for row in rows} == {*fleet, '\'=HYPERLINK("http://evil.example","x")'}
    bad = next(row for row in rows if row["id"] == str(evil.pk))
    assert bad["hostname"] == "'+cmd|' /C calc'!A0" and bad["version"] == "'@SUM(1)"
    assert (bad["product"], bad["held"], bad["in_use"], bad["over_use"]) == (
        "CALL_RECORDING",
        "3",
        "5",
        "2",
    )
    turin = next(row for row in rows if row["name"] == "Turin")
    assert turin["last_sync_utc"] == "" and turin["state"] == "pending"
    milan = next(row for row in rows if row["name"] == "milan-prod")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", milan["last_sync_utc"])


def test_the_csv_export_follows_the_filters_and_is_404_for_other_tenants(cast, account, fleet):
    client = client_for(cast.alice_member)

    response = client.get(f"/accounts/{account.pk}/servers.csv?purpose=production")
    names = [
        row["name"]
        for row in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    ]
    assert names == ["milan-prod", "Turin"]
    assert client_for(cast.bob_admin).get(f"/accounts/{account.pk}/servers.csv").status_code == 404
    assert client.post(f"/accounts/{account.pk}/servers.csv").status_code == 405


def test_an_account_without_servers_says_what_to_do_next(cast, account):
    manager = squash(
        client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/").content.decode()
    )
    viewer = squash(
        client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/servers/").content.decode()
    )

    assert "No servers yet. Add one above" in manager
    assert "activate it on the AppSuite server with the token" in manager
    assert "The partner or the customer's administrator adds servers here." in viewer


def test_a_search_that_finds_nothing_offers_to_clear_it(cast, account, fleet):
    page = squash(
        client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/?q=zzz").content.decode()
    )
    assert "No server matches these filters." in page


def test_the_list_reads_offline_files_without_a_query_per_server(cast, account, perpetual):
    client = client_for(cast.alice_member)

    def offline_servers(count: int) -> int:
        for _ in range(count):
            server = services.create_server(
                account=account,
                name=f"vault-{Server.objects.count()}",
                purpose="test",
                actor=SYSTEM,
            )
            token = services.assign_capacity(
                server=server, product=cast.recording, quantity=1, actor=SYSTEM
            ).token.raw
            upload(client, server, request_file(token, fingerprint=f"fp-{server.pk}"))
        client.get(f"/accounts/{account.pk}/servers/")
        with CaptureQueriesContext(connection) as queries:
            page = client.get(f"/accounts/{account.pk}/servers/").content.decode()
        assert page.count("Activated offline") >= Server.objects.count()
        return len(queries)

    assert offline_servers(1) == offline_servers(4)
