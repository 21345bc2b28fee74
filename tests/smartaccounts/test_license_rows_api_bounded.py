"""GET /api/v1/accounts/{id}/licenses keeps each application's row small whatever the account
holds: at most 50 licenses nested, `license_count` for all of them and `licenses_next` for the
row alone with the next ones, which walks every license once; a tampered cursor answers 400."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from smartaccounts.api import LICENSES_PER_ROW
from smartaccounts.models import License

from ..conftest import api_client_for
from ..factories import LicenseFactory
from ..seek import queries_of

pytestmark = pytest.mark.django_db


def url(account) -> str:
    return f"/api/v1/accounts/{account.pk}/licenses"


def many(account, product, n: int) -> None:
    """`n` licenses, some locked, created five at each instant (ties only the pk breaks)."""
    now = timezone.now()
    License.objects.bulk_create(
        License(
            account=account,
            product=product,
            kind=License.Kind.PERPETUAL,
            quantity=1,
            state=License.State.LOCKED if i % 7 == 0 else License.State.ACTIVE,
            starts_at=now,
            created_at=now - timedelta(minutes=i // 5),
            care_ends_at=now + timedelta(days=365),
            source=f"PO-{i}",
        )
        for i in range(n)
    )


def in_row_order(account, product) -> list[str]:
    licenses = list(License.objects.filter(account=account, product=product))
    licenses.sort(key=lambda lic: lic.pk)
    licenses.sort(key=lambda lic: lic.created_at, reverse=True)
    licenses.sort(key=lambda lic: lic.state)
    return [str(lic.pk) for lic in licenses]


def test_a_row_nests_at_most_50_licenses_and_links_to_the_rest(cast):
    account = cast.carol_customer.smart_account
    many(account, cast.recording, 123)
    LicenseFactory(account=account, product=cast.console)
    api = api_client_for(cast.carol_customer)

    rows = {row["product"]: row for row in api.get(url(account)).json()["results"]}

    recording, console = rows["CALL_RECORDING"], rows["ATTENDANT_CONSOLE"]
    assert len(recording["licenses"]) == LICENSES_PER_ROW == 50
    assert recording["license_count"] == 123
    assert console["license_count"] == 1 and console["licenses_next"] is None
    walked = [lic["id"] for lic in recording["licenses"]]
    link = recording["licenses_next"]
    while link:
        body = api.get(link).json()
        assert [row["product"] for row in body["results"]] == ["CALL_RECORDING"]
        row = body["results"][0]
        assert row["license_count"] == 123 and row["total"] == recording["total"]
        walked += [lic["id"] for lic in row["licenses"]]
        link = row["licenses_next"]
    assert walked == in_row_order(account, cast.recording)


def test_a_tampered_or_misplaced_licenses_cursor_is_a_validation_error(cast):
    account = cast.carol_customer.smart_account
    many(account, cast.recording, 60)
    many(account, cast.console, 60)
    api = api_client_for(cast.carol_customer)
    rows = api.get(url(account)).json()["results"]
    cursor = parse_qs(urlsplit(rows[1]["licenses_next"]).query)["licenses_cursor"][0]
    assert rows[1]["product"] == "CALL_RECORDING"

    for query in (
        {"product": "CALL_RECORDING", "licenses_cursor": cursor[:-2] + "zz"},
        {"product": "ATTENDANT_CONSOLE", "licenses_cursor": cursor},  # another row's
        {"licenses_cursor": cursor},  # no row named
    ):
        response = api.get(url(account), query)
        assert response.status_code == 400, query
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "validation_error"
    dave = api_client_for(cast.dave_customer)
    other = dave.get(url(cast.dave_customer.smart_account), {"product": "CALL_RECORDING"})
    assert other.json()["results"] == []


def test_the_rows_read_the_same_queries_for_5_or_500_licenses(cast):
    account = cast.carol_customer.smart_account
    api = api_client_for(cast.carol_customer)
    many(account, cast.recording, 5)
    api.get(url(account))  # the key's first use is written down once
    few = queries_of(api, url(account))
    many(account, cast.recording, 495)
    body = api.get(url(account)).json()

    assert few == queries_of(api, url(account))
    assert queries_of(api, body["results"][0]["licenses_next"]) <= few + 1
