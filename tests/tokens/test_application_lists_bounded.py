"""A server's page lists at most 50 applications and the account dashboard 25, of an account
that holds hundreds: on the server's page those it holds or reports using always, then the others
by name, with an "and N more" link to the whole list; on the dashboard those needing attention
first, with a link to the licenses page. Their query counts do not grow with the list."""

import re

import pytest
from django.test import Client

from smartaccounts.models import License, User
from tokens.models import Assignment, Server

from ..factories import LicenseFactory, ProductFactory
from ..seek import queries_of

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def applications(account, n: int, start: int = 0) -> list[License]:
    return [
        LicenseFactory(
            account=account,
            product=ProductFactory(code=f"APP_{i:03d}", name=f"App {i:03d}"),
            quantity=5,
        )
        for i in range(start, start + n)
    ]


def listed(html: str) -> list[str]:
    return re.findall(r'<span class="muted small">(APP_\d+) ·', html)


def test_the_server_page_lists_50_applications_keeping_those_it_holds(cast):
    account = cast.carol_customer.smart_account
    licenses = applications(account, 65)
    server = Server.objects.create(
        account=account, name="PBX", reported_usage={"APP_063": 1, "APP_055": 2}
    )
    Assignment.objects.create(server=server, license=licenses[64], quantity=2)
    License.objects.filter(pk=licenses[64].pk).update(assigned=2)
    client = client_for(cast.alice_admin)

    page = client.get(f"/servers/{server.pk}/").content.decode()
    everything = client.get(f"/servers/{server.pk}/", {"applications": "all"}).content.decode()

    shown = listed(page)
    assert len(shown) == 50
    assert {"APP_064", "APP_063", "APP_055"} <= set(shown)  # held, reported in use
    assert shown[:47] == [f"APP_{i:03d}" for i in range(47)]  # then the others by name
    assert "and 15 more applications" in page
    assert f'href="/servers/{server.pk}/?applications=all"' in page
    assert len(listed(everything)) == 65 and "more application" not in everything


def test_a_refusal_shows_beside_its_application_even_past_the_first_50(cast):
    account = cast.carol_customer.smart_account
    applications(account, 55)
    server = Server.objects.create(account=account, name="PBX")
    client = client_for(cast.alice_admin)

    response = client.post(f"/servers/{server.pk}/assign/APP_054/", {"quantity": "999"})

    html = response.content.decode()
    assert response.status_code in (400, 409)
    assert "APP_054" in listed(html)
    assert 'id="err-APP_054"' in html


def test_the_server_page_reads_the_same_queries_for_5_or_60_applications(cast):
    account = cast.carol_customer.smart_account
    applications(account, 5)
    server = Server.objects.create(account=account, name="PBX")
    client = client_for(cast.alice_admin)
    few = queries_of(client, f"/servers/{server.pk}/")
    applications(account, 55, start=5)

    assert queries_of(client, f"/servers/{server.pk}/") == few


def test_the_dashboard_lists_25_applications_attention_first(cast):
    account = cast.carol_customer.smart_account
    applications(account, 40)
    Server.objects.create(
        account=account, name="PBX", state=Server.State.ACTIVE, reported_usage={"APP_035": 9}
    )
    client = client_for(cast.alice_admin)
    few_account = cast.dave_customer.smart_account

    page = client.get(f"/accounts/{account.pk}/overview/").content.decode()

    rows = re.findall(r"<td>(App \d+)</td>", page)
    assert len(rows) == 25 and "App 035" in rows  # over-used: shown though past the first 25
    assert rows == sorted(rows)
    assert "and 15 more applications" in page
    assert f'href="/accounts/{account.pk}/"' in page
    applications(few_account, 3, start=100)
    client = client_for(cast.bob_admin)
    assert (
        "more application"
        not in client.get(f"/accounts/{few_account.pk}/overview/").content.decode()
    )
