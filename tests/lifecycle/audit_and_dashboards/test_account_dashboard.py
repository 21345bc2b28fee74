"""The account dashboard."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_the_account_dashboard_reads_the_known_fixture(cast, carol_account, client, known_account):
    client.force_login(cast.alice_member)

    response = client.get(f"/accounts/{carol_account.pk}/overview/")

    assert response.status_code == 200
    o = response.context["overview"]
    assert o.servers_by_state == {
        "active": 2,
        "stale": 1,
        "offline": 1,
        "pending": 1,
        "deactivated": 1,
    }
    capacity = {
        line.pool.product.code: (line.pool.total, line.pool.assigned, line.in_use, line.pool.locked)
        for line in o.capacity
    }
    assert capacity == {
        "ATTENDANT_CONSOLE": (10, 4, 3, 5),
        "CALL_ANALYTICS": (0, 0, 0, 0),
        "CALL_BILLING": (20, 8, 6, 0),
        "CALL_RECORDING": (50, 37, 24, 50),
    }
    assert dict(o.care) == {"active": 1, "expiring": 1, "expired": 1}
    assert o.stale_servers == [known_account["stale"]]
    assert o.clones == [known_account["clone"]]
    assert o.locked_orders == [known_account["order"]]
    assert o.ending == [known_account["console"]]
    assert o.attention_count == 4
    page = response.content.decode()
    assert 'hx-get="/accounts/' in page and 'hx-trigger="every 30s"' in page
    assert re.search(
        r"<td>Call Recording</td>\s*<td class=\"num\">50 channels</td>\s*"
        r"<td class=\"num\">37</td>\s*<td class=\"num\">24</td>",
        page,
    )
    assert '<p class="big">4</p>' in page
    assert "PO-LOCKED" in page and "s3" in page and "dave-1" not in page


def test_the_htmx_poll_gets_the_live_fragment_only(cast, carol_account, client, known_account):
    client.force_login(cast.carol_viewer)

    response = client.get(f"/accounts/{carol_account.pk}/overview/", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "lifecycle/_overview_live.html"
    fragment = response.content.decode()
    assert "<html" not in fragment and "hx-get" not in fragment
    assert '<p class="big">4</p>' in fragment and "Updated" in fragment


def test_the_account_dashboard_of_another_tenant_is_404_and_read_only(cast, carol_account, client):
    url = f"/accounts/{carol_account.pk}/overview/"
    client.force_login(cast.bob_admin)
    assert client.get(url).status_code == 404
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404
    client.force_login(cast.alice_member)
    assert client.post(url).status_code == 405
    assert client.get("/accounts/00000000-0000-0000-0000-000000000000/overview/").status_code == 404
