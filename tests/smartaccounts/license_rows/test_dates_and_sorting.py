"""The license rows: their dates, sorting and filtering."""

import re

import pytest

from ...factories import (
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ProductFactory,
)
from .conftest import applications, cells, client_for, count_queries, day, squash

pytestmark = pytest.mark.django_db


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
