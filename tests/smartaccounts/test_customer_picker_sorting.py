"""The partner's customer picker sorts by name, applications, servers and expiring care
(whitelisted, by name by default), keeps the sort with the search, the htmx search and the
pages, stays in the partner's tenant, reads a constant number of queries and, when empty,
says how customers arrive."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import strip_tags

from smartaccounts.models import SmartAccount, User

from ..factories import (
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ProductFactory,
    ServerFactory,
)

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def customers(html: str) -> list[str]:
    """Customer names of the picker, top to bottom."""
    return re.findall(r'<a href="/accounts/[0-9a-f-]{36}/"><strong>([^<]+)</strong></a>', html)


def squash(html: str) -> str:
    return " ".join(strip_tags(html).split())


def customer(cast, name: str, *, apps: int, servers: int, expiring: int) -> SmartAccount:
    org = CustomerFactory(name=name)
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=org)
    account = org.smart_account
    now = timezone.now()
    for n in range(apps):
        soon = n < expiring
        LicenseFactory(
            account=account,
            product=ProductFactory(code=f"{name[:3].upper()}_{n}"),
            care_ends_at=now + timedelta(days=10 if soon else 400),
        )
    for n in range(servers):
        ServerFactory(account=account, name=f"srv-{n}")
    return account


@pytest.fixture
def picker(cast) -> None:
    """Alice's customers besides Carol (who has nothing): Bravo (3 applications, 1 server,
    care of 1 expiring), Alpha (1, 3, 0), Delta (2, 2, 2). Dave is Bob's."""
    customer(cast, "Bravo Srl", apps=3, servers=1, expiring=1)
    customer(cast, "Alpha AG", apps=1, servers=3, expiring=0)
    customer(cast, "Delta SA", apps=2, servers=2, expiring=2)
    LicenseFactory(account=cast.dave_customer.smart_account)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["Alpha AG", "Bravo Srl", "Carol Corp", "Delta SA"]),
        ("name", ["Alpha AG", "Bravo Srl", "Carol Corp", "Delta SA"]),
        ("-name", ["Delta SA", "Carol Corp", "Bravo Srl", "Alpha AG"]),
        ("-applications", ["Bravo Srl", "Delta SA", "Alpha AG", "Carol Corp"]),
        ("applications", ["Carol Corp", "Alpha AG", "Delta SA", "Bravo Srl"]),
        ("-servers", ["Alpha AG", "Delta SA", "Bravo Srl", "Carol Corp"]),
        ("servers", ["Carol Corp", "Bravo Srl", "Delta SA", "Alpha AG"]),
        # Ties (no expiring care) by name.
        ("-care", ["Delta SA", "Bravo Srl", "Alpha AG", "Carol Corp"]),
        ("care", ["Alpha AG", "Carol Corp", "Bravo Srl", "Delta SA"]),
        # Not a sort the picker knows: by name.
        ("organization__email", ["Alpha AG", "Bravo Srl", "Carol Corp", "Delta SA"]),
        ("-server_count", ["Alpha AG", "Bravo Srl", "Carol Corp", "Delta SA"]),
    ],
)
def test_the_picker_sorts_by_each_column(cast, picker, sort, expected):
    response = client_for(cast.alice_viewer).get("/customers/", {"sort": sort} if sort else {})

    assert response.status_code == 200
    assert customers(response.content.decode()) == expected


def test_the_first_click_on_a_count_sorts_largest_first_and_the_second_reverses(cast, picker):
    client = client_for(cast.alice_viewer)

    first = client.get("/customers/").content.decode()
    servers = re.search(r'aria-sort="none"><a href="([^"]+)">Servers', first).group(1)
    again = client.get("/customers/" + servers).content.decode()
    reverse = re.search(r'aria-sort="descending"><a href="([^"]+)">Servers', again).group(1)

    assert servers == "?sort=-servers"
    assert reverse == "?sort=servers"
    assert customers(again)[0] == "Alpha AG"


def test_the_sort_combines_with_the_search_and_the_htmx_search_keeps_it(cast, picker):
    client = client_for(cast.alice_viewer)

    page = client.get("/customers/", {"q": "a", "sort": "-servers"}).content.decode()
    fragment = client.get(
        "/customers/", {"q": "a s", "sort": "-servers"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert customers(page) == ["Alpha AG", "Delta SA", "Bravo Srl", "Carol Corp"]
    # The search form sends the sort along (hidden field), the fragment's headers keep both.
    form = page.split('class="filters"')[1].split("</form>")[0]
    assert '<input type="hidden" name="sort" value="-servers">' in form
    assert customers(fragment) == ["Delta SA"]
    assert 'href="?q=a+s&amp;sort=name"' in fragment


def test_the_sort_is_kept_across_pages(cast):
    for n in range(30):
        customer(cast, f"Cust {n:02d}", apps=0, servers=n % 3, expiring=0)
    client = client_for(cast.alice_viewer)

    first = client.get("/customers/", {"sort": "-servers"}).content.decode()
    next_link = re.search(r'href="\?([^"]*page=2)"', first).group(1).replace("&amp;", "&")
    second = client.get(f"/customers/?{next_link}").content.decode()

    assert "sort=-servers" in next_link
    listed = customers(first) + customers(second)
    assert len(listed) == 31 and len(set(listed)) == 31
    by_servers = [n % 3 for n in range(30)]
    assert listed[:10] == [f"Cust {n:02d}" for n in range(30) if by_servers[n] == 2]


def test_other_partners_customers_never_show_whatever_the_sort(cast, picker):
    for sort in ("name", "-applications", "-servers", "-care"):
        bob = client_for(cast.bob_admin).get("/customers/", {"sort": sort}).content.decode()
        assert customers(bob) == ["Dave Inc"]
    assert client_for(cast.carol_admin).get("/customers/", {"sort": "name"}).status_code == 404


def test_sorting_reads_a_constant_number_of_queries(cast, django_assert_max_num_queries):
    client = client_for(cast.alice_viewer)
    with django_assert_max_num_queries(10) as few:
        client.get("/customers/", {"sort": "-care"})
    one_customer = len(few.captured_queries)
    for n in range(15):
        customer(cast, f"More {n:02d}", apps=2, servers=1, expiring=1)

    with django_assert_max_num_queries(one_customer):
        response = client.get("/customers/", {"sort": "-care"})

    assert len(customers(response.content.decode())) == 16


def test_no_customers_yet_says_how_orders_create_them(cast):
    lonely = User.objects.create_user(
        "lonely@stray.example", "pw-for-tests-123", organization=cast.stray_reseller
    )

    page = squash(client_for(lonely).get("/customers/").content.decode())

    assert "No customers yet." in page
    assert "POST /api/v1/orders" in page
    assert "API keys" in page


def test_a_search_with_no_match_leads_back_to_all(cast, picker):
    page = client_for(cast.alice_viewer).get("/customers/", {"q": "zzz"}).content.decode()

    assert "No customer matches “zzz”" in page
    assert 'href="/customers/">Show all customers' in page
