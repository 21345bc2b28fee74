"""The orders page and GET /api/v1/orders at scale: pages are found by seeking on the sort key
and the pk, both walk forwards and backwards through every order exactly once (ties broken by
the pk), a tampered cursor shows page 1 (page) or answers 400 `validation_error` (API), the
query count stays flat, and the API reads the lines and licenses of its page's orders only."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order
from smartaccounts.models import User

from ..seek import forwards_and_backwards, queries_of
from .payloads import URL, order_body

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def place(api, n: int, *, start: int = 0) -> None:
    """`n` orders, three placed at each instant (ties only the pk breaks)."""
    now = timezone.now()
    for i in range(start, start + n):
        response = api.post(URL, order_body(f"PO-{i:03d}"), format="json")
        assert response.status_code == 201, response.content
        Order.objects.filter(pk=response.json()["id"]).update(
            created_at=now - timedelta(hours=i // 3)
        )


def references(response) -> list[str]:
    return [order.reference for order in response.context["page"]]


def newest_first() -> list[tuple[str, str]]:
    orders = Order.objects.filter(reference__startswith="PO-").values_list("created_at", "pk")
    return sorted(orders, reverse=True)


@pytest.mark.parametrize("sort", ["-date", "date", "-reference"])
def test_the_orders_page_walks_every_order_once_both_ways(cast, alice_api, bob_api, sort):
    place(alice_api, 31)
    bob_api.post(URL, order_body("BOB-1"), format="json")

    listed = forwards_and_backwards(
        client_for(cast.alice_member), "/orders/", references, f"?sort={sort}"
    )

    orders = list(Order.objects.filter(placed_by=cast.alice_reseller))
    if sort == "-date":  # newest first, ties by the pk ascending
        orders.sort(key=lambda o: o.pk)
        orders.sort(key=lambda o: o.created_at, reverse=True)
    elif sort == "date":
        orders.sort(key=lambda o: (o.created_at, o.pk))
    else:
        orders.sort(key=lambda o: o.reference, reverse=True)
    assert listed == [o.reference for o in orders]


def test_the_orders_page_falls_back_to_page_1_on_a_bad_cursor_and_reads_flat_queries(
    cast, alice_api
):
    place(alice_api, 5)
    client = client_for(cast.alice_member)
    few = queries_of(client, "/orders/")
    place(alice_api, 26, start=5)
    first = client.get("/orders/")

    assert references(client.get("/orders/", {"after": "abc:def", "page": 2})) == references(first)
    assert few == queries_of(client, "/orders/") == queries_of(client, "/orders/?last=1")


# --- GET /api/v1/orders --------------------------------------------------------------------------


def api_walk(api, url: str, step: str) -> list[str]:
    ids: list[str] = []
    pages: list[list[str]] = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([order["id"] for order in body["results"]])
        url = body[step]
    for page in reversed(pages) if step == "previous" else pages:
        ids += page
    return ids


def test_the_api_walks_every_order_once_both_ways(cast, alice_api, bob_api):
    place(alice_api, 23)
    bob_api.post(URL, order_body("BOB-1"), format="json")

    forwards = api_walk(alice_api, f"{URL}?page_size=5", "next")
    last = alice_api.get(f"{URL}?page_size=5")
    # Backwards from the last page, reached by following `next` to the end.
    url = f"{URL}?page_size=5"
    while (body := alice_api.get(url).json())["next"]:
        url = body["next"]
    backwards = api_walk(alice_api, body["previous"], "previous") + [
        order["id"] for order in body["results"]
    ]

    expected = [str(pk) for _, pk in newest_first()]
    assert forwards == backwards == expected
    assert last.json()["count"] == 23


def test_a_tampered_api_cursor_is_a_validation_error(cast, alice_api):
    place(alice_api, 4)
    next_url = alice_api.get(f"{URL}?page_size=2").json()["next"]
    cursor = parse_qs(urlsplit(next_url).query)["cursor"][0]

    for bad in (cursor[:-3] + "abc", "garbage", cursor.replace(":", "x", 1)):
        response = alice_api.get(URL, {"cursor": bad, "page_size": 2})
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "validation_error"
        assert "cursor" in response.json()["errors"]


def test_the_api_reads_its_page_s_orders_lines_only_and_no_licenses(cast, alice_api):
    """A row carries its line count and totals, worked out with the page's orders; asked for
    lines (`?expand=lines`) it reads the lines of the page's orders by id, never others'. The
    licenses come with the order itself."""
    place(alice_api, 9)
    for expand in ("", "&expand=lines"):
        first = alice_api.get(f"{URL}?page_size=3{expand}").json()
        url = first["next"]

        with CaptureQueriesContext(connection) as captured:
            page = alice_api.get(url).json()

        shown = {order["id"] for order in page["results"]}
        assert len(shown) == 3
        others = Order.objects.exclude(pk__in=shown)
        other_ids = {o.pk.hex for o in others} | {str(o.pk) for o in others}
        sqls = [q["sql"] for q in captured.captured_queries]
        assert not any("smartaccounts_license" in sql for sql in sqls)
        lines = [sql for sql in sqls if "orders_orderline" in sql and "ROW_NUMBER" in sql]
        assert len(lines) == (1 if expand else 0)
        for sql in lines:
            where = sql.split(" WHERE ", 1)[1]
            assert where.startswith('"orders_orderline"."order_id" IN '), sql
            assert not any(value in sql for value in other_ids), sql


def test_the_api_reads_the_same_queries_for_page_1_and_a_later_page(cast, alice_api):
    place(alice_api, 5)
    few = queries_of(alice_api, f"{URL}?page_size=5")
    place(alice_api, 25, start=5)
    later = alice_api.get(f"{URL}?page_size=5").json()["next"]

    assert few == queries_of(alice_api, f"{URL}?page_size=5") == queries_of(alice_api, later)
