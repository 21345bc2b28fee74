"""The licenses pages and API need a bounded number of queries on a large account."""

import pytest
from rest_framework.test import APIClient

from smartaccounts.models import License

from ...load import LARGE
from .conftest import MAX_QUERIES, client_for, count_queries, license_rows, pool_rows

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "rows"),
    [
        ("/accounts/{id}/", 25),
        ("/accounts/{id}/?page=2", 25),
        ("/accounts/{id}/?expand={code}", 25),
        ("/accounts/{id}/licenses/{code}/", None),
    ],
)
def test_the_licenses_pages_need_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries, path, rows
):
    def url(size: str) -> str:
        account = large_and_small[size]
        code = License.objects.filter(account=account).order_by("product__code")[0].product.code
        return path.format(id=account.pk, code=code)

    client = client_for(cast.alice_member)
    client.get(url("large"))

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url("large"))

    assert response.status_code == 200
    page = response.content.decode()
    if rows:
        assert len(pool_rows(page)) == rows
    if "{code}" in path:
        assert len(license_rows(page)) == LARGE["licenses_per_product"]
    assert count_queries(client, url("large")) == count_queries(client, url("small"))


def test_the_licenses_api_needs_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries
):
    client = APIClient()
    client.force_login(cast.alice_member)
    path = "/api/v1/accounts/{}/licenses?page_size=50"
    client.get(path.format(large_and_small["large"].pk))

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(path.format(large_and_small["large"].pk))

    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 50
    assert sum(len(row["licenses"]) for row in body["results"]) == 250
    large = count_queries(client, path.format(large_and_small["large"].pk))
    small = count_queries(client, path.format(large_and_small["small"].pk))
    assert large == small
