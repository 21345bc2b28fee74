"""The reseller dashboard, and constant query counts on the dashboards."""

import pytest

from ...conftest import api_client_for
from ...factories import (
    LicenseFactory,
)
from ...orders.payloads import URL, order_body
from ..conftest import at, subscription
from .conftest import BY_END, csv_rows, grow, make_history, names, server_holding

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("ends", BY_END),
        ("-ends", " ".join(reversed(BY_END.split()))),
        ("customer", "carol-console carol-recording carol-billing erin-console erin-recording"),
        ("-customer", "erin-console erin-recording carol-console carol-recording carol-billing"),
        ("product", "erin-console carol-console carol-billing carol-recording erin-recording"),
        ("-product", "carol-recording erin-recording carol-billing erin-console carol-console"),
        ("nonsense", BY_END),
    ],
)
def test_renewals_in_the_next_90_days_across_all_customers_sorted(
    cast, client, opportunities, sort, expected
):
    client.force_login(cast.alice_member)

    response = client.get("/renewals/", {"sort": sort})

    assert response.status_code == 200
    assert names(response.context["page"]) == expected.split()
    rows = csv_rows(client.get("/renewals/", {"sort": sort, "format": "csv"}))
    assert [row[-1] for row in rows[1:]] == [str(opportunities[k].pk) for k in expected.split()]


def test_the_renewals_csv_matches_the_rows(cast, client, opportunities):
    client.force_login(cast.alice_member)

    rows = csv_rows(client.get("/renewals/", {"format": "csv"}))

    assert rows[0] == [
        "customer",
        "product",
        "kind",
        "quantity",
        "term_ends_at",
        "care_ends_at",
        "next_end",
        "auto_renew",
        "license_id",
    ]
    erin_console = opportunities["erin-console"]
    assert rows[1] == [
        "Erin GmbH",
        "ATTENDANT_CONSOLE",
        "subscription",
        "10",
        "2031-03-20T06:00:00+00:00",
        "2031-03-20T06:00:00+00:00",
        "2031-03-20T06:00:00+00:00",
        "False",
        str(erin_console.pk),
    ]
    assert rows[3] == [
        "Carol Corp",
        "CALL_RECORDING",
        "perpetual",
        "10",
        "",
        "2031-05-09T06:00:00+00:00",
        "2031-05-09T06:00:00+00:00",
        "",
        str(opportunities["carol-recording"].pk),
    ]
    assert [row[6][:10] for row in rows[1:]] == [
        "2031-03-20",
        "2031-04-09",
        "2031-05-09",
        "2031-05-24",
        "2031-06-07",
    ]


def test_the_renewals_page_shows_stale_servers_and_locked_orders(cast, client, opportunities):
    client.force_login(cast.alice_member)

    response = client.get("/renewals/")

    assert [s.name for s in response.context["stale"]] == [
        "carol-stale",
        "erin-clone",
    ]  # longest silent first
    assert [o.reference for o in response.context["locked"]] == ["PO-ALICE"]
    page = response.content.decode()
    assert "possible clone" in page and "renewal off" in page and "renews itself" in page
    assert "dave-stale" not in page and "PO-BOB" not in page and "Dave" not in page


def test_bob_sees_none_of_alices_and_customers_get_404(cast, client, opportunities):
    client.force_login(cast.bob_admin)
    response = client.get("/renewals/")
    assert [lic.account.name for lic in response.context["page"]] == ["Dave Inc"]
    assert [s.name for s in response.context["stale"]] == ["dave-stale"]
    assert [o.reference for o in response.context["locked"]] == ["PO-BOB"]
    rows = csv_rows(client.get("/renewals/", {"format": "csv"}))
    assert [row[0] for row in rows[1:]] == ["Dave Inc"]

    for customer in (cast.carol_admin, cast.carol_viewer):
        client.force_login(customer)
        assert client.get("/renewals/").status_code == 404
        assert client.get("/renewals/", {"format": "csv"}).status_code == 404
    client.force_login(cast.alice_member)
    assert client.post("/renewals/").status_code == 405


@pytest.mark.parametrize("size", ["small", "large"])
def test_the_dashboards_and_history_need_a_constant_number_of_queries(
    cast, carol_account, client, django_assert_max_num_queries, size
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=30))
    server_holding(carol_account, "one", "stale", {"CALL_RECORDING": 1})
    make_history(carol_account, 2)
    if size == "large":
        grow(cast, cast.alice_reseller, 12)
        for product in (cast.console, cast.analytics, cast.billing):
            subscription(carol_account, product, at(days=20))
        for n in range(15):
            server_holding(carol_account, f"more-{n}", "stale", {"CALL_RECORDING": n})
        make_history(carol_account, 60)
        for n in range(6):
            api_client_for(cast.alice_reseller).post(
                URL,
                order_body(f"PO-{n}", {"name": "Carol", "email": "it@carol.example"}),
                format="json",
            )
    client.force_login(cast.alice_member)
    account = f"/accounts/{carol_account.pk}"

    # 16: one of them finds the servers in use sharing a machine (possible clones).
    with django_assert_max_num_queries(16):
        assert client.get(f"{account}/overview/").status_code == 200
    with django_assert_max_num_queries(16):
        assert client.get(f"{account}/overview/", HTTP_HX_REQUEST="true").status_code == 200
    with django_assert_max_num_queries(11):  # by next end: one query per merged part
        assert client.get("/renewals/").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/renewals/", {"sort": "customer", "page": 2}).status_code == 200
    with django_assert_max_num_queries(5):  # with the count that caps an export
        assert len(csv_rows(client.get("/renewals/", {"format": "csv"}))) > 1
    with django_assert_max_num_queries(11):
        assert client.get(f"{account}/history/").status_code == 200
    with django_assert_max_num_queries(11):
        assert client.get(f"{account}/history/", {"action": "server", "page": 2}).status_code == 200
    with django_assert_max_num_queries(10):  # with the count that caps an export
        assert len(csv_rows(client.get(f"{account}/history/", {"format": "csv"}))) > 1
