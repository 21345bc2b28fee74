"""The history and the renewals dashboard at scale: pages are found by seeking on the sort key
and the pk (newest first for the history), so the last page costs what the first does; both
walk forwards and backwards through every row exactly once, ties broken by the pk; a tampered
cursor shows page 1; their CSV exports stream rows from the database as they are sent."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.query import QuerySet
from django.test.utils import CaptureQueriesContext

from smartaccounts.models import AuditEvent, License

from ..factories import CustomerFactory, LicenseFactory, PartnerLinkFactory
from ..seek import forwards_and_backwards, link, queries_of
from .conftest import START, at, subscription

pytestmark = pytest.mark.django_db


def event_ids(response) -> list[str]:
    return [str(event.pk) for event in response.context["page"]]


def events(account, n: int, action: str = "server.renamed") -> None:
    """`n` events, four at each instant (ties only the pk breaks)."""
    AuditEvent.objects.bulk_create(
        AuditEvent(
            created_at=START - timedelta(minutes=i // 4),
            action=action,
            actor_label="daily jobs",
            account=account,
            object_id=f"srv-{i}",
            data={"from": f"old-{i}", "to": f"pbx-{i}"},
        )
        for i in range(n)
    )


def newest_first(account, **filters) -> list[str]:
    rows = AuditEvent.objects.filter(account=account, **filters).values_list("created_at", "pk")
    return [str(pk) for _, pk in sorted(rows, reverse=True)]


def test_the_history_walks_every_event_once_both_ways(cast, client, carol_account):
    events(carol_account, 123)
    events(carol_account, 30, action="license.renewed")
    client.force_login(cast.alice_member)
    path = f"/accounts/{carol_account.pk}/history/"

    listed = forwards_and_backwards(client, path, event_ids)
    renewed = forwards_and_backwards(client, path, event_ids, "?action=license.renewed")
    prefix = forwards_and_backwards(client, path, event_ids, "?action=license")

    assert listed == newest_first(carol_account)
    assert renewed == prefix == newest_first(carol_account, action="license.renewed")
    page = client.get(path).content.decode()
    assert "Page 1 of 4" in page and "153 in all" in page


def test_a_tampered_history_cursor_shows_page_1(cast, client, carol_account):
    events(carol_account, 60)
    client.force_login(cast.alice_member)
    path = f"/accounts/{carol_account.pk}/history/"
    first = client.get(path)
    cursor = re.search(r"after=([^&]+)", link(first.content.decode(), "next")).group(1)

    for bad in (cursor[:-2] + "zz", "not-a-cursor"):
        response = client.get(path, {"after": bad, "page": 2})
        assert response.status_code == 200
        assert event_ids(response) == event_ids(first)
    # Another list's cursor (the renewals') is refused too.
    assert event_ids(client.get(path, {"before": cursor})) == event_ids(first)


def test_the_history_reads_the_same_queries_first_or_last_and_for_5_or_200_events(
    cast, client, carol_account
):
    client.force_login(cast.alice_member)
    path = f"/accounts/{carol_account.pk}/history/"
    events(carol_account, 5)
    few = queries_of(client, path)
    events(carol_account, 195)
    first = queries_of(client, path)
    last = queries_of(client, f"{path}?last=1")
    middle_link = link(client.get(f"{path}?last=1").content.decode(), "prev")

    assert few == first == last == queries_of(client, path + middle_link)


def test_the_event_filter_lists_the_codes_present_and_hides_partner_mail_from_customers(
    cast, client, carol_account, dave_account
):
    events(carol_account, 3)
    events(carol_account, 2, action="order.email_sent")
    events(carol_account, 1, action="license.renewed")
    events(dave_account, 1, action="token.minted")

    client.force_login(cast.alice_member)
    partner = client.get(f"/accounts/{carol_account.pk}/history/").context["actions"]
    client.force_login(cast.carol_admin)
    customer = client.get(f"/accounts/{carol_account.pk}/history/").context["actions"]

    assert [code for code, _ in partner] == [
        "license.renewed",
        "order.email_sent",
        "server.renamed",
    ]
    assert [code for code, _ in customer] == ["license.renewed", "server.renamed"]


@pytest.fixture
def no_whole_list(monkeypatch):
    """Fails a test that loads a whole queryset of `model` into memory (iterator() does not)."""

    def guard(model):
        original = QuerySet._fetch_all

        def fetch_all(self):
            assert self.model is not model or self._result_cache is not None, (
                f"{model.__name__} rows loaded into a list"
            )
            return original(self)

        monkeypatch.setattr(QuerySet, "_fetch_all", fetch_all)

    return guard


def test_the_history_csv_streams_events_from_the_database(
    cast, client, carol_account, no_whole_list
):
    events(carol_account, 1200)
    client.force_login(cast.alice_member)
    no_whole_list(AuditEvent)

    with CaptureQueriesContext(connection) as answered:
        response = client.get(f"/accounts/{carol_account.pk}/history/", {"format": "csv"})
    assert response.streaming
    assert not any("audit" in q["sql"] and "ORDER BY" in q["sql"] for q in answered)
    with CaptureQueriesContext(connection) as sent:
        body = b"".join(response.streaming_content).decode()

    assert any("ORDER BY" in q["sql"] for q in sent)  # the events are read as they are sent
    assert len(body.splitlines()) == 1201


# --- Renewals ------------------------------------------------------------------------------------


def renewal_ids(response) -> list[str]:
    return [str(lic.pk) for lic in response.context["page"]]


def renewals(cast, customers: int, each: int) -> None:
    """Subscriptions ending within 90 days, several on each day (ties)."""
    for c in range(customers):
        org = CustomerFactory(name=f"Cust {c % 3}")
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=org)
        for n in range(each):
            subscription(org.smart_account, cast.recording, at(days=5 + n % 4))


def next_end(lic: License):
    """The license's first end within the dashboard's 90 days (term or care)."""
    ends = [end for end in (lic.ends_at, lic.care_ends_at) if end and START < end <= at(90)]
    return min(ends, default=None)


def renewal_order(sort: str) -> list[str]:
    licenses = [
        lic
        for lic in License.objects.filter(account__organization__name__startswith="Cust")
        if next_end(lic) is not None
    ]
    if sort in ("ends", "-ends"):
        licenses.sort(key=lambda lic: (next_end(lic), lic.pk), reverse=sort == "-ends")
    else:  # "-customer": the customer Z-A, then the end, then the pk
        licenses.sort(key=lambda lic: (lic.ends_at, lic.pk))
        licenses.sort(key=lambda lic: lic.account.name, reverse=True)
    return [str(lic.pk) for lic in licenses]


@pytest.mark.parametrize("sort", ["ends", "-customer"])
def test_renewals_walk_every_license_once_both_ways(cast, client, sort):
    renewals(cast, 6, 11)
    client.force_login(cast.alice_member)

    listed = forwards_and_backwards(client, "/renewals/", renewal_ids, f"?sort={sort}")

    assert listed == renewal_order(sort)


def mixed_renewals(cast) -> None:
    """Licenses whose next end is the term's, care's (a perpetual license), and care's before
    the term's, interleaved over the same days with ties: the dashboard's two merged lists."""
    for c in range(4):
        org = CustomerFactory(name=f"Cust {c}")
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=org)
        account = org.smart_account
        for n in range(12):
            day = at(days=5 + n % 5)
            if n % 3 == 0:
                subscription(account, cast.recording, day)
            elif n % 3 == 1:
                LicenseFactory(
                    account=account,
                    product=cast.console,
                    kind=License.Kind.PERPETUAL,
                    ends_at=None,
                    care_ends_at=day,
                )
            else:  # care lapses first; the term runs past the dashboard's 90 days
                subscription(account, cast.recording, at(days=200), care_ends_at=day)
        # Not on the dashboard: care over already, the term beyond 90 days; both over.
        subscription(account, cast.recording, at(days=120), care_ends_at=at(days=-3))
        LicenseFactory(account=account, product=cast.console, ends_at=None, care_ends_at=at(-1))


@pytest.mark.parametrize("sort", ["ends", "-ends"])
def test_renewals_by_next_end_merge_term_and_care_ends_into_one_walk(cast, client, sort):
    mixed_renewals(cast)
    client.force_login(cast.alice_member)

    listed = forwards_and_backwards(client, "/renewals/", renewal_ids, f"?sort={sort}")

    assert listed == renewal_order(sort)
    assert len(listed) == 4 * 12
    numbered = client.get("/renewals/", {"sort": sort, "page": 2})
    assert renewal_ids(numbered) == listed[25:48]
    assert "48 in all" in numbered.content.decode()


def test_renewals_read_the_same_queries_first_or_last_and_a_bad_cursor_shows_page_1(cast, client):
    renewals(cast, 1, 5)
    client.force_login(cast.alice_member)
    few = queries_of(client, "/renewals/")
    renewals(cast, 5, 10)
    first = client.get("/renewals/")

    assert few == queries_of(client, "/renewals/") == queries_of(client, "/renewals/?last=1")
    bad = client.get("/renewals/", {"after": "x" * 40, "page": 3})
    assert renewal_ids(bad) == renewal_ids(first)


def test_the_renewals_csv_streams_licenses_from_the_database(cast, client, no_whole_list):
    renewals(cast, 3, 20)
    client.force_login(cast.alice_member)
    no_whole_list(License)

    response = client.get("/renewals/", {"format": "csv"})
    assert response.streaming
    with CaptureQueriesContext(connection) as sent:
        body = b"".join(response.streaming_content).decode()

    assert len(sent.captured_queries) >= 1
    assert len(body.splitlines()) == 61
