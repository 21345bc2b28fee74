"""Where each role lands, the licenses page and the license-detail fragment."""

import re
import uuid

import pytest
from django.test import Client

from ...factories import (
    CustomerFactory,
    LicenseFactory,
    UserFactory,
)
from .conftest import client_for, license_rows, pool_rows

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["carol_admin", "carol_viewer"])
def test_a_customer_user_lands_on_its_account_page(cast, account, licenses, who):
    client = client_for(getattr(cast, who))

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/{account.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Call Recording" in pool_rows(page)
    assert "Switch customer" not in page


@pytest.mark.parametrize("who", ["alice_admin", "alice_viewer", "bob_admin", "distributor_admin"])
def test_a_partner_lands_on_the_customer_picker(cast, who):
    response = client_for(getattr(cast, who)).get("/")

    assert response.status_code == 302
    assert response["Location"] == "/customers/"


def test_a_customer_without_a_smart_account_lands_on_a_placeholder(cast):
    erin = CustomerFactory(name="Erin Ltd", smart_account=None)
    user = UserFactory(organization=erin)

    response = client_for(user).get("/")

    assert response.status_code == 200
    assert "Erin Ltd" in response.content.decode()


@pytest.mark.parametrize(
    "who", ["carol_admin", "carol_viewer", "alice_member", "distributor_admin"]
)
def test_the_licenses_page_shows_one_row_per_application(cast, account, licenses, who):
    response = client_for(getattr(cast, who)).get(f"/accounts/{account.pk}/")

    assert response.status_code == 200
    page = response.content.decode()

    def day(name: str, field: str = "care_ends_at") -> str:
        return getattr(licenses[name], field).strftime("%Y-%m-%d")

    # The care cell names the nearest care end; the last cell the nearest term end.
    assert pool_rows(page) == {
        "Attendant Console": ["seats", "5", "0", "5", "0", f"expiring until {day('console')}", "—"],
        "Call Analytics": [
            "users",
            "8",
            "0",
            "8",
            "0",
            f"expired ended {day('analytics')}",
            day("analytics", "ends_at"),
        ],
        "Call Billing": ["users", "0", "0", "0", "7", "—", "—"],
        # Active only: 10 perpetual + 5 subscription; 20 locked apart; expired and revoked out.
        "Call Recording": [
            "channels",
            "15",
            "4",
            "11",
            "20",
            f"active until {day('recording_perpetual')}",
            day("recording_subscription", "ends_at"),
        ],
    }
    assert list(pool_rows(page)) == sorted(pool_rows(page))
    # Collapsed: no license is listed, only the way to load them.
    assert 'class="nested' not in page
    assert "PO-100" not in page and "BOB-PO-1" not in page
    assert f'hx-get="/accounts/{account.pk}/licenses/CALL_RECORDING/"' in page


def test_partners_see_the_account_in_the_header_with_a_way_to_switch(cast, account, licenses):
    page = client_for(cast.alice_member).get(f"/accounts/{account.pk}/").content.decode()

    header = page.split("</header>")[0]
    assert "Carol Corp" in header
    assert 'href="/customers/">Switch customer</a>' in header
    assert f'href="/accounts/{account.pk}/servers/"' in page
    assert "Read only" not in page


@pytest.mark.parametrize("who", ["carol_viewer", "alice_viewer", "distributor_admin"])
def test_read_only_roles_are_told_so(cast, account, licenses, who):
    page = client_for(getattr(cast, who)).get(f"/accounts/{account.pk}/").content.decode()

    assert "Read only" in page


def test_expand_shows_that_applications_licenses_with_their_order(cast, account, licenses):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/?expand=CALL_RECORDING")

    assert response.status_code == 200
    page = response.content.decode()
    rows = license_rows(page)
    # Revoked licenses are gone for good: not listed.
    assert sorted(row[-1] for row in rows) == ["PO-099", "PO-100", "PO-101", "PO-102"]
    by_order = {row[-1]: row for row in rows}
    assert by_order["PO-100"][:4] == ["Perpetual", "10", "4", "Active"]
    assert by_order["PO-102"][:4] == ["Perpetual", "20", "0", "Locked"]
    assert by_order["PO-101"][0].startswith("Subscription")
    care_end = licenses["recording_perpetual"].care_ends_at.strftime("%Y-%m-%d")
    assert by_order["PO-100"][6] == care_end
    assert page.count('class="nested') == 1
    assert re.search(r"<details open\s", page)
    # Only that application, only this account.
    assert "PO-200" not in page and "BOB-PO-1" not in page


def test_expanding_an_unknown_application_shows_the_rows_only(cast, account, licenses):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/?expand=NOPE")

    assert response.status_code == 200
    assert 'class="nested' not in response.content.decode()
    assert len(pool_rows(response.content.decode())) == 4


def test_the_licenses_page_is_paginated(cast, account):
    for n in range(30):
        LicenseFactory(account=account, product__name=f"App {n:02d}")
    client = client_for(cast.carol_viewer)

    first = pool_rows(client.get(f"/accounts/{account.pk}/").content.decode())
    second_page = client.get(f"/accounts/{account.pk}/?page=2").content.decode()

    assert len(first) == 25
    assert set(first) | set(pool_rows(second_page)) == {f"App {n:02d}" for n in range(30)}
    assert "Page 2 of 2" in second_page


def test_another_tenants_account_is_404(cast, account, licenses):
    dave = cast.dave_customer.smart_account

    assert client_for(cast.bob_admin).get(f"/accounts/{account.pk}/").status_code == 404
    assert client_for(cast.alice_admin).get(f"/accounts/{dave.pk}/").status_code == 404
    assert client_for(cast.carol_admin).get(f"/accounts/{dave.pk}/").status_code == 404
    # Another distributor's reseller, and vendor staff (who use the back office).
    stray = UserFactory(organization=cast.stray_reseller)
    assert client_for(stray).get(f"/accounts/{account.pk}/").status_code == 404
    assert client_for(cast.vendor_staff).get(f"/accounts/{account.pk}/").status_code == 404


@pytest.mark.parametrize("account_id", ["not-a-uuid", str(uuid.UUID(int=1))])
def test_a_bad_account_id_is_404(cast, account_id):
    client = client_for(cast.alice_admin)

    assert client.get(f"/accounts/{account_id}/").status_code == 404
    assert client.get(f"/accounts/{account_id}/licenses/CALL_RECORDING/").status_code == 404


def test_anonymous_visitors_are_sent_to_login(cast, account):
    for path in (f"/accounts/{account.pk}/", f"/accounts/{account.pk}/licenses/CALL_RECORDING/"):
        response = Client().get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/?next="), path


@pytest.mark.parametrize("method", ["post", "put", "delete"])
@pytest.mark.parametrize("suffix", ["", "licenses/CALL_RECORDING/"])
def test_the_licenses_pages_refuse_other_methods(cast, account, licenses, method, suffix):
    response = getattr(client_for(cast.alice_admin), method)(f"/accounts/{account.pk}/{suffix}")

    assert response.status_code == 405


def test_the_fragment_lists_one_applications_licenses(cast, account, licenses):
    response = client_for(cast.carol_viewer).get(
        f"/accounts/{account.pk}/licenses/CALL_RECORDING/", HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response.templates[0].name == "smartaccounts/_license_detail.html"
    page = response.content.decode()
    assert "<html" not in page and "<header" not in page
    rows = license_rows(page)
    assert {row[-1]: row[3] for row in rows} == {
        "PO-099": "Expired",
        "PO-100": "Active",
        "PO-101": "Active",
        "PO-102": "Locked",
    }
    assert "BOB-PO-1" not in page and "PO-200" not in page


def test_the_fragment_of_an_application_the_account_lacks_is_empty(cast, account, licenses):
    other = LicenseFactory(account=cast.dave_customer.smart_account, product__code="ONLY_DAVE")

    response = client_for(cast.alice_member).get(
        f"/accounts/{account.pk}/licenses/{other.product.code}/"
    )

    assert response.status_code == 200
    assert license_rows(response.content.decode()) == [["No licenses."]]


def test_the_fragment_of_an_unknown_application_is_404(cast, account, licenses):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/licenses/NOPE/")

    assert response.status_code == 404


def test_the_fragment_of_another_tenants_account_is_404(cast, account, licenses):
    dave = cast.dave_customer.smart_account

    bob_on_carol = client_for(cast.bob_admin).get(
        f"/accounts/{account.pk}/licenses/CALL_RECORDING/"
    )
    alice_on_dave = client_for(cast.alice_admin).get(
        f"/accounts/{dave.pk}/licenses/CALL_RECORDING/"
    )

    assert bob_on_carol.status_code == 404
    assert alice_on_dave.status_code == 404
    assert "BOB-PO-1" not in alice_on_dave.content.decode()
