"""The license rows: CSV export, empty states and the partner's view."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from smartaccounts.models import User

from ...factories import (
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ProductFactory,
)
from .conftest import client_for, read_csv, squash

pytestmark = pytest.mark.django_db


def test_the_csv_has_one_flat_row_per_license(cast, account, rows):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/licenses.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="licenses-carol-corp.csv"'
    assert response["Cache-Control"] == "private, no-store"
    exported = read_csv(response)
    assert len(exported) == 5  # Carol's five, never Dave's
    assert {row["order_reference"] for row in exported} == {
        "PO-100",
        "PO-101",
        "PO-200",
        "PO-300",
        "PO-400",
    }
    sub = next(row for row in exported if row["order_reference"] == "PO-101")
    lic = rows["recording_sub"]
    assert sub == {
        "application": "Call Recording",
        "code": "CALL_RECORDING",
        "kind": "subscription",
        "quantity": "5",
        "state": "active",
        "starts_at": lic.starts_at.replace(microsecond=0).isoformat(),
        "term_ends_at": lic.ends_at.replace(microsecond=0).isoformat(),
        "care_ends_at": lic.care_ends_at.replace(microsecond=0).isoformat(),
        "care_status": "active",
        "order_reference": "PO-101",
    }
    billing = next(row for row in exported if row["order_reference"] == "PO-400")
    assert (billing["state"], billing["kind"], billing["term_ends_at"]) == (
        "locked",
        "perpetual",
        "",
    )
    assert {row["care_status"] for row in exported} == {"active", "expiring", "expired"}


@pytest.mark.parametrize(
    "hostile",
    ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"],
)
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(cast, account, hostile):
    LicenseFactory(
        account=account,
        product=ProductFactory(code="EVIL", name=hostile),
        source=hostile,
    )

    response = client_for(cast.carol_admin).get(f"/accounts/{account.pk}/licenses.csv")

    (row,) = read_csv(response)
    assert row["application"] == "'" + hostile
    assert row["order_reference"] == "'" + hostile
    assert row["quantity"] == "10"  # numbers stay numbers


def test_the_csv_of_another_tenant_is_404_and_anonymous_must_log_in(cast, account, rows):
    dave = cast.dave_customer.smart_account
    path = f"/accounts/{dave.pk}/licenses.csv"

    assert client_for(cast.alice_admin).get(path).status_code == 404
    assert client_for(cast.carol_admin).get(path).status_code == 404
    assert client_for(cast.vendor_staff).get(path).status_code == 404
    assert client_for(cast.alice_admin).get("/accounts/nope/licenses.csv").status_code == 404
    anonymous = Client().get(path)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert client_for(cast.bob_admin).post(path).status_code == 405


def test_the_csv_reads_a_constant_number_of_queries(cast, account, rows):
    client = client_for(cast.carol_viewer)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            read_csv(client.get(f"/accounts/{account.pk}/licenses.csv"))
        return len(captured)

    few = queries()
    for _ in range(30):
        LicenseFactory(account=account, product=ProductFactory())

    assert queries() == few


def test_the_page_links_to_its_csv(cast, account, rows):
    page = client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/").content.decode()

    assert f'href="/accounts/{account.pk}/licenses.csv"' in page


def test_a_customer_without_licenses_is_told_what_to_expect(cast, account):
    page = squash(client_for(cast.carol_admin).get(f"/accounts/{account.pk}/").content.decode())

    assert "No licenses yet." in page
    assert "Alice Reseller" in page  # who will place the orders
    assert "locked until the partner unlocks the order" in page


def test_a_partner_without_licenses_there_is_told_how_they_arrive(cast, account):
    page = squash(client_for(cast.alice_admin).get(f"/accounts/{account.pk}/").content.decode())

    assert "No licenses yet." in page
    assert "POST /api/v1/orders" in page


def test_the_customer_sees_who_its_partner_is(cast, account, rows):
    page = client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/").content.decode()

    partner = re.search(r'<p class="partner">(.*?)</p>', page, re.S)
    assert partner is not None
    assert squash(partner.group(1)).startswith("Your partner: Alice Reseller, orders@alice.example")
    assert 'href="mailto:orders@alice.example"' in partner.group(1)
    # Only its own partners.
    assert "Bob Reseller" not in page


def test_a_customer_served_by_two_resellers_sees_both(cast, account, rows):
    PartnerLinkFactory(reseller=cast.bob_reseller, customer=cast.carol_customer)

    page = client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/").content.decode()

    assert squash(re.search(r'<p class="partner">(.*?)</p>', page, re.S).group(1)).startswith(
        "Your partners: Alice Reseller, orders@alice.example; Bob Reseller, orders@bob.example"
    )


def test_partners_do_not_see_the_partner_line(cast, account, rows):
    page = client_for(cast.alice_admin).get(f"/accounts/{account.pk}/").content.decode()

    assert 'class="partner"' not in page


def test_a_customer_still_without_a_smart_account_is_told_who_its_partner_is(cast):
    erin = CustomerFactory(name="Erin Ltd", smart_account=None)
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    user = User.objects.create_user("it@erin.example", "pw-for-tests-123", organization=erin)

    page = client_for(user).get("/").content.decode()

    assert squash(re.search(r'<p class="partner">(.*?)</p>', page, re.S).group(1)).startswith(
        "Your partner: Alice Reseller, orders@alice.example"
    )
    assert "Ask Alice Reseller" in page
