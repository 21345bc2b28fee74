"""The customer picker at scale: pages are found by seeking on the sort key and the pk, so the
last page costs what the first does; the per-customer counts are computed for the page's rows
only; every sort walks forwards and backwards through each customer exactly once; a tampered
cursor shows page 1."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from smartaccounts.models import SmartAccount, User
from tokens.models import Server

from ..factories import CustomerFactory, LicenseFactory, PartnerLinkFactory
from ..seek import forwards_and_backwards, link, queries_of

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def names(response) -> list[tuple[str, str]]:
    return [(account.name, str(account.pk)) for account in response.context["page"]]


def grow(cast, n: int, *, start: int = 0) -> None:
    """`n` more customers of Alice's: names repeat (ties) and server counts run 0, 1, 2."""
    for i in range(start, start + n):
        org = CustomerFactory(name=f"Cust {i // 3:02d}")
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=org)
        for s in range(i % 3):
            Server.objects.create(account=org.smart_account, name=f"s{s}")
        if i % 4 == 0:
            LicenseFactory(account=org.smart_account, product=cast.recording)


def expected(sort: str) -> list[tuple[str, str]]:
    """The picker's order computed apart: the sort column, then the name, then the pk."""
    accounts = list(SmartAccount.objects.filter(organization__name__startswith="C"))
    servers = {
        account.pk: Server.objects.filter(account=account)
        .exclude(state=Server.State.DEACTIVATED)
        .count()
        for account in accounts
    }
    if sort == "name":
        accounts.sort(key=lambda a: (a.name, a.pk))
    elif sort == "-name":  # the name descending, ties by the pk ascending still
        accounts.sort(key=lambda a: a.pk)
        accounts.sort(key=lambda a: a.name, reverse=True)
    else:  # "-servers": most first, then by name and pk ascending
        accounts.sort(key=lambda a: (-servers[a.pk], a.name, a.pk))
    return [(a.name, str(a.pk)) for a in accounts]


@pytest.mark.parametrize("sort", ["name", "-name", "-servers"])
def test_every_customer_once_forwards_and_backwards_ties_broken_by_pk(cast, sort):
    grow(cast, 57)
    client = client_for(cast.alice_viewer)

    listed = forwards_and_backwards(client, "/customers/", names, f"?sort={sort}")

    assert listed == expected(sort)
    assert len(listed) == 58  # Carol Corp and the 57


def test_the_pages_carry_the_search_and_the_sort(cast):
    grow(cast, 57)
    client = client_for(cast.alice_viewer)

    listed = forwards_and_backwards(client, "/customers/", names, "?q=cust&sort=-servers")

    assert len(listed) == 57
    page = client.get("/customers/?q=cust&sort=-servers").content.decode()
    assert "q=cust" in link(page, "next") and "sort=-servers" in link(page, "next")
    assert "Page 1 of 3" in page


def test_a_tampered_cursor_shows_page_1(cast):
    grow(cast, 30)
    client = client_for(cast.alice_viewer)
    first = client.get("/customers/")
    second_link = link(first.content.decode(), "next")
    cursor = re.search(r"after=([^&]+)", second_link).group(1)

    for bad in (cursor[:-3] + "abc", "garbage", cursor + "x"):
        response = client.get("/customers/", {"after": bad, "page": 2})
        assert response.status_code == 200
        assert names(response) == names(first)
    # A cursor of another sort is refused alike.
    other = client.get("/customers/", {"after": cursor, "sort": "-servers"})
    assert names(other) == names(client.get("/customers/", {"sort": "-servers"}))


def test_a_page_reads_the_same_queries_first_or_last_and_for_5_or_50_customers(cast):
    grow(cast, 4)
    client = client_for(cast.alice_viewer)
    few = queries_of(client, "/customers/")
    grow(cast, 46, start=4)
    first = queries_of(client, "/customers/")
    last = queries_of(client, "/customers/?last=1")
    by_servers_last = queries_of(client, "/customers/?sort=-servers&last=1")

    assert few == first == last
    assert by_servers_last <= first


def test_the_counts_are_computed_for_the_page_s_customers_only(cast):
    """Sorted by name, the count subqueries run in one query restricted to the page's ids."""
    grow(cast, 40)
    client = client_for(cast.alice_viewer)

    with CaptureQueriesContext(connection) as captured:
        response = client.get("/customers/?last=1")

    shown = {pk for _, pk in names(response)}
    counting = [q["sql"] for q in captured.captured_queries if "tokens_server" in q["sql"]]
    assert len(counting) == 1
    assert " IN (" in counting[0]
    hidden = SmartAccount.objects.exclude(pk__in=shown).values_list("pk", flat=True)
    assert not any(pk.hex in counting[0] or str(pk) in counting[0] for pk in hidden)
    assert len(shown) == 41 - 25
