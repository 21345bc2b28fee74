"""A distributor's customer list names the reseller serving each customer and filters by it
(issue 20, item 7); the page's cost does not grow with the list."""

import re

import pytest
from django.test import Client

from ..factories import CustomerFactory, OrganizationFactory, PartnerLinkFactory

pytestmark = pytest.mark.django_db


def rows(html: str) -> dict[str, str]:
    """Customer name -> the reseller cell, from the list's rows."""
    found = re.findall(
        r"<strong>([^<]+)</strong></a>\s*<br><span[^>]*>[^<]*</span></td>\s*<td>([^<]*)</td>", html
    )
    return dict(found)


@pytest.fixture
def zed(cast):
    """A second reseller of the distributor, with a customer of its own and one it shares."""
    zed = OrganizationFactory(name="Zed Reseller", email="orders@zed.example")
    cast.distributor.resellers.add(zed)
    PartnerLinkFactory(reseller=zed, customer=CustomerFactory(name="Erin Ltd"))
    PartnerLinkFactory(reseller=zed, customer=cast.carol_customer)
    return zed


def dist_client(cast) -> Client:
    client = Client()
    client.force_login(cast.distributor_admin)
    return client


def test_the_distributor_sees_which_reseller_serves_each_customer(cast, zed):
    page = dist_client(cast).get("/customers/").content.decode()

    assert '<th scope="col">Reseller</th>' in page
    assert rows(page) == {"Carol Corp": "Alice Reseller, Zed Reseller", "Erin Ltd": "Zed Reseller"}
    # Bob is not the distributor's reseller: neither his customer nor his name shows.
    assert "Dave Inc" not in page and "Bob Reseller" not in page


def test_the_distributor_filters_by_reseller(cast, zed):
    client = dist_client(cast)

    alices = client.get(f"/customers/?reseller={cast.alice_reseller.pk}").content.decode()
    zeds = client.get(f"/customers/?reseller={zed.pk}&sort=-servers").content.decode()

    assert list(rows(alices)) == ["Carol Corp"]
    assert f'<option value="{cast.alice_reseller.pk}" selected>Alice Reseller</option>' in alices
    assert sorted(rows(zeds)) == ["Carol Corp", "Erin Ltd"]


def test_a_reseller_not_the_distributors_filters_nothing(cast, zed):
    page = dist_client(cast).get(f"/customers/?reseller={cast.bob_reseller.pk}").content.decode()

    assert sorted(rows(page)) == ["Carol Corp", "Erin Ltd"]
    assert "Dave Inc" not in page


def test_a_filter_that_finds_none_says_so(cast, zed):
    lonely = OrganizationFactory(name="Lonely Reseller")
    cast.distributor.resellers.add(lonely)

    page = dist_client(cast).get(f"/customers/?reseller={lonely.pk}").content.decode()

    assert "No customer of Lonely Reseller yet" in page


def test_a_reseller_sees_no_reseller_column(cast, zed):
    client = Client()
    client.force_login(cast.alice_admin)

    page = client.get("/customers/").content.decode()

    assert '<th scope="col">Reseller</th>' not in page
    assert 'name="reseller"' not in page


@pytest.mark.parametrize("sort", ["name", "-servers"])
def test_the_lists_queries_do_not_grow_with_customers_or_resellers(
    cast, zed, sort, django_assert_max_num_queries
):
    client = dist_client(cast)
    client.get("/customers/")  # the session and its user are loaded once
    with django_assert_max_num_queries(12) as small:
        client.get(f"/customers/?sort={sort}")
    for i in range(40):
        reseller = OrganizationFactory(name=f"R{i:02d}")
        cast.distributor.resellers.add(reseller)
        customer = CustomerFactory(name=f"Cust {i:02d}")
        PartnerLinkFactory(reseller=reseller, customer=customer)
        PartnerLinkFactory(reseller=zed, customer=customer)

    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(f"/customers/?sort={sort}&reseller={zed.pk}")

    assert len(response.context["page"]) == 25
