"""The server pages and the picker need a bounded number of queries on a large account."""

import pytest

from .conftest import MAX_QUERIES, client_for, count_queries, listed_servers, picker_rows

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("page", ["servers", "server", "server_htmx"])
def test_server_pages_need_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries, page
):
    def path(size: str) -> str:
        account, fleet = large_and_small[size]
        if page == "servers":
            return f"/accounts/{account.pk}/servers/"
        return f"/servers/{fleet[0].pk}/"

    headers = {"HTTP_HX_REQUEST": "true"} if page == "server_htmx" else {}
    client = client_for(cast.alice_member)
    client.get(path("large"), **headers)

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(path("large"), **headers)

    assert response.status_code == 200
    body = response.content.decode()
    if page == "servers":
        assert len(listed_servers(body)) == 25
        assert "Page 1 of 2" in body
    else:
        assert body.count('name="quantity"') == 50
    large, _ = count_queries(client, path("large"))
    small, _ = count_queries(client, path("small"))
    assert large == small


def test_the_picker_needs_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries
):
    alice = client_for(cast.alice_member)
    alice.get("/customers/")

    with django_assert_max_num_queries(MAX_QUERIES):
        response = alice.get("/customers/")

    rows = picker_rows(response.content.decode())
    assert len(rows) == 25
    # 50 applications, 30 servers, 5 active licenses per application whose care ends soon.
    assert rows["Carol Corp"] == ["50", "30", "250"]
    large, _ = count_queries(alice, "/customers/")
    # Bob serves a single, empty customer: the same number of queries.
    small, _ = count_queries(client_for(cast.bob_admin), "/customers/")
    assert large == small
