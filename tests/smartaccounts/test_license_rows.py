"""The licenses page as its people use it: dates in the rows (not only in a tooltip), sorting
and filtering by care status kept across pages, the CSV export, the empty states and, for a
customer, who its partner is. Every variant reads a constant number of queries and stays in
the caller's tenant."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from smartaccounts.actors import Actor
from smartaccounts.models import License, SmartAccount, User
from tokens import services

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


def squash(html: str) -> str:
    return " ".join(strip_tags(html).split())


def applications(html: str) -> list[str]:
    """The application names of the licenses table, top to bottom."""
    rows = re.findall(r'<tbody class="pool-row">\s*<tr>(.*?)</tr>', html, re.S)
    return [squash(re.search(r"<strong>(.*?)</strong>", row, re.S).group(1)) for row in rows]


def cells(html: str, application: str) -> dict[str, str]:
    """{column label: text} of one application's row."""
    for row in re.findall(r'<tbody class="pool-row">\s*<tr>(.*?)</tr>', html, re.S):
        if f"<strong>{application}</strong>" in row:
            return {
                label: squash(text)
                for label, text in re.findall(
                    r'<td\b[^>]*data-label="([^"]+)"[^>]*>(.*?)</td>', row, re.S
                )
            }
    raise AssertionError(f"no row for {application}")


def day(moment) -> str:
    return moment.strftime("%Y-%m-%d")


@pytest.fixture
def account(cast) -> SmartAccount:
    return cast.carol_customer.smart_account


@pytest.fixture
def rows(cast, account) -> dict[str, License]:
    """Carol's applications: care active (Recording), expiring (Console), expired
    (Analytics), and only locked capacity (Billing); Dave's license must never show."""
    now = timezone.now()
    made = {
        "recording": LicenseFactory(
            account=account,
            product=cast.recording,
            quantity=10,
            care_ends_at=now + timedelta(days=300, hours=5),
            source="PO-100",
        ),
        "recording_sub": LicenseFactory(
            account=account,
            product=cast.recording,
            kind=License.Kind.SUBSCRIPTION,
            quantity=5,
            ends_at=now + timedelta(days=200),
            care_ends_at=now + timedelta(days=400),
            source="PO-101",
        ),
        "console": LicenseFactory(
            account=account,
            product=cast.console,
            quantity=40,
            care_ends_at=now + timedelta(days=20),
            source="PO-200",
        ),
        "analytics": LicenseFactory(
            account=account,
            product=cast.analytics,
            kind=License.Kind.SUBSCRIPTION,
            quantity=3,
            ends_at=now + timedelta(days=90),
            care_ends_at=now - timedelta(days=2),
            source="PO-300",
        ),
        "billing": LicenseFactory(
            account=account,
            product=cast.billing,
            quantity=7,
            state=License.State.LOCKED,
            source="PO-400",
        ),
        "dave": LicenseFactory(
            account=cast.dave_customer.smart_account,
            product=cast.recording,
            quantity=99,
            care_ends_at=now + timedelta(days=5),
            source="BOB-PO-1",
        ),
    }
    server = ServerFactory(account=account, name="PBX-Milan")
    services.assign_capacity(
        server=server, product=cast.recording, quantity=4, actor=Actor.system("tests")
    )
    return made


# --- Dates in the rows -----------------------------------------------------------------------


def test_each_application_row_shows_its_nearest_care_end_and_term_end(cast, account, rows):
    page = client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/").content.decode()

    # The earliest care end among active licenses, and the nearest subscription term end,
    # as text in the row (touch and keyboard users never see a tooltip).
    recording = cells(page, "Call Recording")
    assert recording["Care"] == f"active until {day(rows['recording'].care_ends_at)}"
    assert recording["Term ends"] == day(rows["recording_sub"].ends_at)
    assert cells(page, "Attendant Console")["Care"] == (
        f"expiring until {day(rows['console'].care_ends_at)}"
    )
    assert cells(page, "Attendant Console")["Term ends"] == "—"  # perpetual only
    assert cells(page, "Call Analytics")["Care"] == (
        f"expired ended {day(rows['analytics'].care_ends_at)}"
    )
    assert cells(page, "Call Billing")["Care"] == "—"  # nothing active yet
    assert 'title="until' not in page


def test_expanded_license_rows_show_each_date_as_a_day(cast, account, rows):
    page = (
        client_for(cast.carol_viewer)
        .get(f"/accounts/{account.pk}/licenses/CALL_RECORDING/")
        .content.decode()
    )

    listed = {
        squash(order): {label: squash(text) for label, text in found}
        for found, order in (
            (
                re.findall(r'<td\b[^>]*data-label="([^"]+)"[^>]*>(.*?)</td>', row, re.S),
                re.search(r'data-label="Order">(.*?)</td>', row, re.S).group(1),
            )
            for row in re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>")[1], re.S)
        )
    }
    sub = rows["recording_sub"]
    assert listed["PO-101"]["Start"] == day(sub.starts_at)
    assert listed["PO-101"]["Term end"] == day(sub.ends_at)
    assert listed["PO-101"]["Care end"] == day(sub.care_ends_at)
    assert listed["PO-100"]["Term end"] == "—"
    assert listed["PO-100"]["Care end"] == day(rows["recording"].care_ends_at)


def test_times_on_the_api_keys_page_name_their_zone_without_seconds(cast):
    client = client_for(cast.alice_admin)
    client.post("/api-keys/", {"name": "ERP"})

    page = client.get("/api-keys/").content.decode()

    assert re.search(r"<td>\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", page), page
    assert not re.search(r"\d{2}:\d{2}:\d{2}", page)


# --- Sorting and filtering -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["Attendant Console", "Call Analytics", "Call Billing", "Call Recording"]),
        ("name", ["Attendant Console", "Call Analytics", "Call Billing", "Call Recording"]),
        ("-name", ["Call Recording", "Call Billing", "Call Analytics", "Attendant Console"]),
        # Available: 40, 11 (15 - 4 assigned), 3, 0.
        ("-available", ["Attendant Console", "Call Recording", "Call Analytics", "Call Billing"]),
        ("available", ["Call Billing", "Call Analytics", "Call Recording", "Attendant Console"]),
        # Care: the most urgent first (expired, expiring, active, nothing active yet).
        ("care", ["Call Analytics", "Attendant Console", "Call Recording", "Call Billing"]),
        ("-care", ["Call Billing", "Call Recording", "Attendant Console", "Call Analytics"]),
        # Not a sort the page knows: the default.
        ("quantity", ["Attendant Console", "Call Analytics", "Call Billing", "Call Recording"]),
        (
            "-product__name",
            ["Attendant Console", "Call Analytics", "Call Billing", "Call Recording"],
        ),
    ],
)
def test_the_licenses_sort_by_name_available_and_care(cast, account, rows, sort, expected):
    response = client_for(cast.alice_member).get(
        f"/accounts/{account.pk}/", {"sort": sort} if sort else {}
    )

    assert response.status_code == 200
    assert applications(response.content.decode()) == expected


def test_the_sorted_column_is_marked_and_clicking_it_again_reverses(cast, account, rows):
    page = (
        client_for(cast.alice_member)
        .get(f"/accounts/{account.pk}/", {"sort": "-available", "care": "active"})
        .content.decode()
    )

    header = re.search(r'<th[^>]*aria-sort="descending"[^>]*><a href="([^"]+)">Available', page)
    assert header is not None
    # The reverse keeps the care filter.
    assert header.group(1).replace("&amp;", "&") == "?sort=available&care=active"
    assert page.count('aria-sort="none"') == 2


@pytest.mark.parametrize(
    ("care", "expected"),
    [
        ("active", ["Call Recording"]),
        ("expiring", ["Attendant Console"]),
        ("expired", ["Call Analytics"]),
        ("", ["Attendant Console", "Call Analytics", "Call Billing", "Call Recording"]),
        ("bogus", ["Attendant Console", "Call Analytics", "Call Billing", "Call Recording"]),
    ],
)
def test_the_licenses_filter_by_care_status(cast, account, rows, care, expected):
    page = (
        client_for(cast.carol_viewer)
        .get(f"/accounts/{account.pk}/", {"care": care})
        .content.decode()
    )

    assert applications(page) == expected


def test_a_care_filter_with_no_match_says_so_and_leads_back(cast, account):
    LicenseFactory(account=account, product=cast.recording, care_ends_at=None)  # no care

    page = (
        client_for(cast.carol_viewer)
        .get(f"/accounts/{account.pk}/", {"care": "active"})
        .content.decode()
    )

    assert applications(page) == []
    assert "No application has care status “active”" in squash(page)
    assert f'href="/accounts/{account.pk}/">Show all applications' in page


def test_the_care_filter_links_keep_the_sort(cast, account, rows):
    page = (
        client_for(cast.carol_viewer)
        .get(f"/accounts/{account.pk}/", {"sort": "-name", "page": "1"})
        .content.decode()
    )

    links = dict(
        (label, href.replace("&amp;", "&"))
        for href, label in re.findall(
            r'<a href="([^"]*)"[^>]*>(All|Active|Expiring|Expired)</a>', page
        )
    )
    assert links == {
        "All": "?sort=-name",
        "Active": "?sort=-name&care=active",
        "Expiring": "?sort=-name&care=expiring",
        "Expired": "?sort=-name&care=expired",
    }


def test_the_choice_is_kept_in_the_pagination_links(cast, account):
    for n in range(30):
        LicenseFactory(account=account, product__name=f"App {n:02d}", quantity=n + 1)
    client = client_for(cast.carol_viewer)

    first = client.get(f"/accounts/{account.pk}/", {"sort": "-available", "care": "active"})
    next_link = re.search(r'href="\?([^"]*page=2)"', first.content.decode())
    assert next_link is not None
    query = next_link.group(1).replace("&amp;", "&")
    assert "sort=-available" in query and "care=active" in query
    second = client.get(f"/accounts/{account.pk}/?{query}").content.decode()

    assert applications(first.content.decode()) == [f"App {n:02d}" for n in range(29, 4, -1)]
    assert applications(second) == [f"App {n:02d}" for n in range(4, -1, -1)]


def test_sorting_never_reaches_another_tenants_account(cast, account, rows):
    dave = cast.dave_customer.smart_account

    assert client_for(cast.alice_admin).get(f"/accounts/{dave.pk}/?sort=care").status_code == 404
    page = client_for(cast.alice_admin).get(f"/accounts/{account.pk}/?sort=care").content.decode()
    assert "BOB-PO-1" not in page and "99" not in re.findall(r">(\d+)<", page)


def count_queries(client: Client, path: str) -> int:
    client.get(path)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def test_sorting_and_filtering_read_a_constant_number_of_queries(
    cast, account, rows, django_assert_max_num_queries
):
    small = CustomerFactory(name="Small Ltd")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=small)
    LicenseFactory(account=small.smart_account, product=cast.analytics, care_ends_at=None)
    for _ in range(40):
        LicenseFactory(account=account, product=ProductFactory(), care_ends_at=None)
    client = client_for(cast.alice_member)
    path = "/accounts/{}/?sort=care&care=expired&expand=CALL_ANALYTICS"

    with django_assert_max_num_queries(15):
        client.get(path.format(account.pk))
    assert count_queries(client, path.format(account.pk)) == count_queries(
        client, path.format(small.smart_account.pk)
    )


# --- CSV export ------------------------------------------------------------------------------


def read_csv(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


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


# --- Empty states and the partner ------------------------------------------------------------


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
