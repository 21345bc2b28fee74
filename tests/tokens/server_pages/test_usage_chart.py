"""The server page's chart of the last 30 days of reported use, per application: present with
its text alternative, scoped to the tenant, and read in one query whatever the number of days
recorded."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tokens.models import Server, UsageDay

from .conftest import client_for, squash

pytestmark = pytest.mark.django_db


@pytest.fixture
def reporting(cast, fleet) -> Server:
    """PBX-Rome holds 2 channels of Call Recording and 1 console seat; it reported 3 channels
    (over) twelve days ago, 2 since yesterday."""
    _, rome = fleet
    today = timezone.now().date()
    Server.objects.filter(pk=rome.pk).update(
        first_sync_at=timezone.now() - timedelta(days=60), reported_usage={"CALL_RECORDING": 2}
    )
    UsageDay.objects.create(
        server=rome, day=today - timedelta(days=12), peaks={"CALL_RECORDING": 3}
    )
    UsageDay.objects.create(server=rome, day=today - timedelta(days=1), peaks={"CALL_RECORDING": 2})
    rome.refresh_from_db()
    return rome


def charts(page: str) -> dict[str, str]:
    """{product code: the chart's article} on the page."""
    section = page.split('<section id="usage">')[1].split("</section>")[0]
    return dict(
        re.findall(r'<article id="usage-\d+" data-product="(\w+)">(.*?)</article>', section, re.S)
    )


def test_the_server_page_charts_the_use_of_each_application_it_holds(cast, reporting):
    response = client_for(cast.carol_viewer).get(f"/servers/{reporting.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    found = charts(page)
    assert set(found) == {"CALL_RECORDING", "ATTENDANT_CONSOLE"}
    recording = found["CALL_RECORDING"]
    peak_day = (timezone.now().date() - timedelta(days=12)).isoformat()
    assert "<svg " in recording and 'role="img"' in recording
    assert "Call Recording: channels in use per day, last 30 days</title>" in recording
    assert (
        f"Peak 3 channels on {peak_day}; holds 2; more in use than it holds on 11 of 30 days."
        in squash(recording)
    )
    # The table behind it, for screen readers: the over-use days said in words.
    assert f"<td>{peak_day}</td><td>3 (more than it holds)</td>" in recording
    assert "No use recorded; holds 1." in squash(found["ATTENDANT_CONSOLE"])
    assert "style=" not in page.split('<section id="usage">')[1].split("</section>")[0]


def test_a_server_that_never_reported_has_no_chart(cast, fleet):
    milan, _ = fleet  # pending

    page = client_for(cast.alice_member).get(f"/servers/{milan.pk}/").content.decode()

    assert '<section id="usage">' not in page


def test_another_tenants_server_and_its_chart_stay_hidden(cast, reporting):
    assert client_for(cast.bob_admin).get(f"/servers/{reporting.pk}/").status_code == 404


def test_the_chart_reads_one_query_whatever_the_days_recorded(
    cast, fleet, django_assert_max_num_queries
):
    _, rome = fleet
    today = timezone.now().date()
    client = client_for(cast.alice_member)
    path = f"/servers/{rome.pk}/"

    def usage_queries(queries: list[dict[str, str]]) -> int:
        return sum(1 for q in queries if "tokens_usageday" in q["sql"])

    # One day recorded (and an older one, carried in).
    UsageDay.objects.create(
        server=rome, day=today - timedelta(days=40), peaks={"CALL_RECORDING": 1}
    )
    UsageDay.objects.create(server=rome, day=today, peaks={"CALL_RECORDING": 2})
    client.get(path)  # warm up what is cached per process
    with django_assert_max_num_queries(100) as one_day:
        client.get(path)
    # Thirty days recorded: not one query more.
    UsageDay.objects.bulk_create(
        UsageDay(server=rome, day=today - timedelta(days=n), peaks={"CALL_RECORDING": n})
        for n in range(1, 30)
    )
    with django_assert_max_num_queries(len(one_day.captured_queries)) as thirty_days:
        response = client.get(path)

    assert usage_queries(one_day.captured_queries) == 1
    assert usage_queries(thirty_days.captured_queries) == 1
    recording = charts(response.content.decode())["CALL_RECORDING"]
    assert "Peak 29 channels on" in squash(recording)
