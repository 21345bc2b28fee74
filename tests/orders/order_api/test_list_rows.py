"""GET /api/v1/orders: rows carry a line count and totals, not the lines; a page costs the same
whatever its orders hold; and the list holds exactly the orders the caller may see, each once."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Order
from orders.selectors import LIST_LINES
from smartaccounts.actors import Actor

from ...conftest import api_client_for
from ..payloads import URL, assert_problem, in_days, order_body

pytestmark = pytest.mark.django_db


def big_body(reference: str, lines: int) -> dict:
    return order_body(
        reference,
        lines=[
            {
                "product": "CALL_RECORDING",
                "quantity": 1 + n % 3,
                "kind": "perpetual",
                "care_ends_at": in_days(365),
            }
            for n in range(lines)
        ],
    )


def queries_of(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def test_ten_orders_of_200_lines_cost_what_ten_small_orders_cost(
    cast, alice_api, bob_api, django_assert_max_num_queries
):
    for n in range(10):
        assert alice_api.post(URL, big_body(f"BIG-{n}", 200), format="json").status_code == 201
        assert bob_api.post(URL, big_body(f"SMALL-{n}", 1), format="json").status_code == 201

    with django_assert_max_num_queries(4):
        big = alice_api.get(f"{URL}?page_size=10")
    small = bob_api.get(f"{URL}?page_size=10")

    rows = big.json()["results"]
    assert [row["line_count"] for row in rows] == [200] * 10
    assert [row["total_quantity"] for row in rows] == [399] * 10  # 1, 2, 3, 1, 2, 3, ... 1, 2
    assert all("lines" not in row and "licenses" not in row for row in rows)
    assert [row["line_count"] for row in small.json()["results"]] == [1] * 10
    # The same statements, and about the same bytes, for 2,000 lines as for 10.
    assert len(queries_of(alice_api, f"{URL}?page_size=10")) == len(
        queries_of(bob_api, f"{URL}?page_size=10")
    )
    assert len(big.content) < 1.2 * len(small.content)

    with django_assert_max_num_queries(5):
        expanded = alice_api.get(f"{URL}?page_size=10&expand=lines")
    rows = expanded.json()["results"]
    assert [len(row["lines"]) for row in rows] == [LIST_LINES] * 10
    order = Order.objects.get(reference="BIG-0")
    assert [line["quantity"] for line in rows[-1]["lines"]] == [
        line.quantity for line in order.lines.order_by("position")[:LIST_LINES]
    ]
    # The order itself carries all its lines and licenses.
    detail = alice_api.get(f"{URL}/{order.pk}").json()
    assert len(detail["lines"]) == 200 and len(detail["licenses"]) == 200


def test_only_lines_can_be_expanded(cast, alice_api):
    alice_api.post(URL, order_body(), format="json")

    problem = assert_problem(alice_api.get(f"{URL}?expand=licenses"), 400, "validation_error")

    assert list(problem["errors"]) == ["expand"]


def test_the_list_holds_what_each_caller_may_see_each_order_once(cast, alice_api, bob_api):
    """Orders a partner placed and those placed for it (both at once when it ordered for
    itself), paged in twos: exactly Order.objects.visible_to, newest first, none twice."""
    distributor = api_client_for(cast.distributor)
    alice = str(cast.alice_reseller.pk)
    for n in range(3):
        assert alice_api.post(URL, order_body(f"A-{n}"), format="json").status_code == 201
        assert bob_api.post(URL, order_body(f"B-{n}"), format="json").status_code == 201
        body = order_body(f"D-{n}", reseller=alice)
        assert distributor.post(URL, body, format="json").status_code == 201

    callers = {
        cast.alice_reseller: alice_api,
        cast.bob_reseller: bob_api,
        cast.distributor: distributor,
        cast.carol_customer: api_client_for(cast.carol_customer),
        cast.vendor: api_client_for(cast.vendor),
    }
    for organization, client in callers.items():
        visible = Order.objects.visible_to(Actor(label="tests", organization=organization))
        expected = [
            str(pk) for pk in visible.order_by("-created_at", "-pk").values_list("pk", flat=True)
        ]
        listed, url = [], f"{URL}?page_size=2"
        while url:
            response = client.get(url)
            if response.status_code == 403:  # customers and the vendor place no orders
                break
            body = response.json()
            assert body["count"] == len(expected)
            listed += [row["id"] for row in body["results"]]
            url = body["next"]
        assert listed == expected, organization.name
    assert len(callers) == 5
