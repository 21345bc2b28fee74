"""The account history page and its CSV."""

import pytest
from django.test import Client

from .conftest import csv_rows

pytestmark = pytest.mark.django_db


def test_history_lists_the_accounts_events_newest_first_50_a_page(cast, client, history):
    client.force_login(cast.alice_member)

    first = client.get(history)
    second = client.get(history, {"page": 2})

    assert first.status_code == second.status_code == 200
    assert first.context["page"].paginator.count == 55
    shown = [e.event.object_id for e in first.context["entries"]] + [
        e.event.object_id for e in second.context["entries"]
    ]
    assert len(first.context["entries"]) == 50 and len(shown) == 55
    assert shown[0] == "srv-51" and shown[-3:] == ["lic-5", "lic-3", "lic-1"]
    assert first.context["actions"] == [
        ("license.renewed", "License renewed"),
        ("server.renamed", "Server renamed"),
    ]
    page = first.content.decode()
    assert "Server renamed from old-51 to pbx-51" in page and "198.51.100.4" in page
    assert "server.renamed" not in page.replace('value="server.renamed"', "")
    assert "2031-03-07 08:51 UTC" in page
    assert "Page 1 of 2" in page
    last = second.content.decode()
    assert "renewed automatically until 2032-03-01" in last
    assert "Cloud Licensing (automatic)" in last


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "license.renewed"}, ["lic-5", "lic-3", "lic-1"]),
        ({"action": "license"}, ["lic-5", "lic-3", "lic-1"]),
        ({"since": "2031-03-02", "until": "2031-03-05"}, ["lic-5", "lic-3"]),
        ({"since": "2031-03-06", "action": "license.renewed"}, []),
        ({"until": "2031-03-01"}, ["lic-1"]),
        ({"since": "not-a-date", "action": "license"}, ["lic-5", "lic-3", "lic-1"]),
    ],
)
def test_history_filters_by_type_and_date(cast, client, history, query, expected):
    client.force_login(cast.alice_member)

    response = client.get(history, query)

    assert [e.event.object_id for e in response.context["entries"]] == expected
    assert csv_rows(client.get(history, {**query, "format": "csv"}))[1:] == [
        row for row in csv_rows(client.get(history, {"format": "csv"}))[1:] if row[5] in expected
    ]


def test_history_exports_csv_with_flat_columns_and_one_line_per_event(cast, client, history):
    client.force_login(cast.alice_member)

    rows = csv_rows(client.get(history, {"format": "csv"}))

    header = rows[0]
    assert header[:8] == [
        "time_utc",
        "actor",
        "action",
        "action_in_words",
        "object_type",
        "object_id",
        "object_name",
        "address",
    ]
    assert "detail_from" in header and "detail_to" in header and header[-1] == "more_details"
    assert len(rows) == 1 + 55
    first = dict(zip(header, rows[1], strict=True))
    assert first["time_utc"] == "2031-03-07T08:51:00+00:00"
    assert first["actor"] == "member@alice.example"
    assert first["action"] == "server.renamed"
    assert first["action_in_words"] == "Server renamed from old-51 to pbx-51"
    assert (first["object_id"], first["address"]) == ("srv-51", "198.51.100.4")
    assert (first["detail_from"], first["detail_to"], first["more_details"]) == (
        "old-51",
        "pbx-51",
        "",
    )
    last = dict(zip(header, rows[-1], strict=True))
    assert (last["action"], last["actor"], last["object_type"], last["object_id"]) == (
        "license.renewed",
        "Cloud Licensing (automatic)",
        "smartaccounts.license",
        "lic-1",
    )
    assert last["address"] == ""  # no address for the system
    assert last["more_details"] == "source: automatic"
    assert not any(cell.startswith("{") for row in rows for cell in row)  # no raw JSON
    filtered = csv_rows(client.get(history, {"format": "csv", "action": "server"}))
    assert len(filtered) == 1 + 52


def test_the_customer_reads_partner_people_as_their_organization(cast, client, history):
    client.force_login(cast.carol_admin)

    page = client.get(history).content.decode()
    rows = csv_rows(client.get(history, {"format": "csv"}))

    assert "Alice Reseller" in page and "member@alice.example" not in page
    assert "198.51.100.4" not in page  # another organization's addresses are not shown
    assert {row[1] for row in rows[1:53]} == {"Alice Reseller"}
    assert {row[7] for row in rows[1:]} == {""}


def test_history_of_another_tenant_is_404_and_it_is_read_only(cast, client, history):
    client.force_login(cast.bob_admin)
    assert client.get(history).status_code == 404
    assert client.get(history, {"format": "csv"}).status_code == 404
    client.force_login(cast.alice_member)
    assert client.post(history).status_code == 405
    assert client.get("/accounts/not-a-uuid/history/").status_code == 404
    assert Client().get(history).status_code == 302  # to the login
