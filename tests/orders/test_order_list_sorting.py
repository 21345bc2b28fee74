"""The partner's orders list sorts by date, reference, customer and state (whitelisted, newest
first by default), keeps the choice across pages and filters, lists only the partner's own
orders and reads a constant number of queries however many orders there are."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import Order
from smartaccounts.models import User

from .payloads import URL, order_body

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def references(html: str) -> list[str]:
    """The order references of the list, top to bottom."""
    return re.findall(r'<a href="/orders/[0-9a-f-]{36}/">([^<]+)</a>', html)


@pytest.fixture
def orders(cast, alice_api, bob_api) -> dict[str, Order]:
    """Four orders of Alice's (for two customers, placed on different days, one unlocked) and
    one of Bob's that Alice never sees."""
    customers = {
        "PO-B": {"name": "Zeta Srl", "email": "it@zeta.example", "external_id": "ZETA"},
        "PO-D": {"name": "Alpha AG", "email": "it@alpha.example", "external_id": "ALPHA"},
        "PO-A": {"name": "Zeta Srl", "email": "it@zeta.example", "external_id": "ZETA"},
        "PO-C": {"name": "Alpha AG", "email": "it@alpha.example", "external_id": "ALPHA"},
    }
    now = timezone.now()
    made = {}
    for age, (reference, customer) in enumerate(customers.items()):
        response = alice_api.post(URL, order_body(reference, customer=customer), format="json")
        assert response.status_code == 201, response.content
        Order.objects.filter(pk=response.json()["id"]).update(created_at=now - timedelta(days=age))
        made[reference] = Order.objects.get(pk=response.json()["id"])
    Order.objects.filter(pk=made["PO-A"].pk).update(state=Order.State.UNLOCKED)
    bob = bob_api.post(URL, order_body("BOB-1"), format="json")
    assert bob.status_code == 201
    return made


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["PO-B", "PO-D", "PO-A", "PO-C"]),  # newest first
        ("-date", ["PO-B", "PO-D", "PO-A", "PO-C"]),
        ("date", ["PO-C", "PO-A", "PO-D", "PO-B"]),
        ("reference", ["PO-A", "PO-B", "PO-C", "PO-D"]),
        ("-reference", ["PO-D", "PO-C", "PO-B", "PO-A"]),
        # Same customer: newest first.
        ("customer", ["PO-D", "PO-C", "PO-B", "PO-A"]),
        ("-customer", ["PO-B", "PO-A", "PO-D", "PO-C"]),
        ("state", ["PO-B", "PO-D", "PO-C", "PO-A"]),  # locked first
        ("-state", ["PO-A", "PO-B", "PO-D", "PO-C"]),
    ],
)
def test_orders_sort_by_each_column(cast, orders, sort, expected):
    response = client_for(cast.alice_member).get("/orders/", {"sort": sort} if sort else {})

    assert response.status_code == 200
    assert references(response.content.decode()) == expected


@pytest.mark.parametrize(
    "sort", ["password", "-created_at", "customer__name", "date;drop", "--date"]
)
def test_an_unknown_sort_falls_back_to_newest_first(cast, orders, sort):
    response = client_for(cast.alice_member).get("/orders/", {"sort": sort})

    assert response.status_code == 200
    page = response.content.decode()
    assert references(page) == ["PO-B", "PO-D", "PO-A", "PO-C"]
    assert '<option value="-date" selected>' in page


def test_the_filter_bar_shows_the_chosen_sort(cast, orders):
    page = client_for(cast.alice_member).get("/orders/", {"sort": "customer"}).content.decode()

    form = page.split('<form method="get" class="filters"')[1].split("</form>")[0]
    assert '<option value="customer" selected>' in form
    assert 'name="sort"' in form


def test_sorting_combines_with_the_state_filter_and_search(cast, orders):
    client = client_for(cast.alice_member)

    locked = client.get("/orders/", {"state": "locked", "sort": "reference"}).content.decode()
    alpha = client.get("/orders/", {"q": "alpha", "sort": "-reference"}).content.decode()

    assert references(locked) == ["PO-B", "PO-C", "PO-D"]
    assert references(alpha) == ["PO-D", "PO-C"]


def test_the_sort_is_kept_in_the_pagination_links(cast, alice_api):
    for n in range(30):
        assert alice_api.post(URL, order_body(f"PO-{n:02d}"), format="json").status_code == 201
    client = client_for(cast.alice_member)

    first = client.get("/orders/", {"sort": "reference", "state": "locked"}).content.decode()
    next_link = re.search(r'href="\?([^"]*page=2)"', first)
    assert next_link is not None
    assert "sort=reference" in next_link.group(1) and "state=locked" in next_link.group(1)
    second = client.get("/orders/?" + next_link.group(1).replace("&amp;", "&")).content.decode()

    assert references(first) == [f"PO-{n:02d}" for n in range(25)]
    assert references(second) == [f"PO-{n:02d}" for n in range(25, 30)]


def test_other_partners_orders_stay_out_whatever_the_sort(cast, orders):
    for sort in ("reference", "customer", "state", "date"):
        page = client_for(cast.alice_member).get("/orders/", {"sort": sort}).content.decode()
        assert "BOB-1" not in page
        assert len(references(page)) == 4


def test_no_orders_yet_says_how_to_place_one(cast):
    page = client_for(cast.alice_admin).get("/orders/").content.decode()

    assert "No orders yet" in page
    assert "POST /api/v1/orders" in page
    assert 'href="/api-keys/"' in page


def test_sorting_reads_a_constant_number_of_queries(cast, alice_api, django_assert_max_num_queries):
    client = client_for(cast.alice_member)
    alice_api.post(URL, order_body("PO-ONE"), format="json")
    with django_assert_max_num_queries(12) as few:
        client.get("/orders/", {"sort": "customer"})
    one_order = len(few.captured_queries)
    for n in range(20):
        alice_api.post(URL, order_body(f"PO-MANY-{n}"), format="json")

    with django_assert_max_num_queries(one_order):
        response = client.get("/orders/", {"sort": "customer"})

    assert len(references(response.content.decode())) == 21
