"""GET /api/v1/accounts and GET /api/v1/accounts/{id}/licenses (S9)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from smartaccounts.models import License, SmartAccount

from ..conftest import api_client_for
from ..factories import (
    AssignmentFactory,
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ProductFactory,
    ServerFactory,
)
from ..orders.payloads import assert_problem

pytestmark = pytest.mark.django_db

ACCOUNTS = "/api/v1/accounts"


def licenses_url(account_id: object) -> str:
    return f"{ACCOUNTS}/{account_id}/licenses"


def session_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def account_ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def carol_account(cast):
    return cast.carol_customer.smart_account


@pytest.fixture
def dave_account(cast):
    return cast.dave_customer.smart_account


@pytest.fixture
def erin_account(cast):
    """A second customer Alice serves."""
    erin = CustomerFactory(name="Erin GmbH")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    return erin.smart_account


# --- GET /api/v1/accounts --------------------------------------------------------------------


def test_a_customer_sees_only_its_own_account(cast, carol_account, erin_account):
    response = api_client_for(cast.carol_customer).get(ACCOUNTS)

    assert account_ids(response) == {str(carol_account.pk)}
    row = response.json()["results"][0]
    assert row["name"] == carol_account.name
    assert row["customer"]["id"] == str(cast.carol_customer.pk)
    assert row["customer"]["name"] == "Carol Corp"
    assert row["can_manage"] is True


def test_a_reseller_sees_the_customers_it_serves(cast, carol_account, dave_account, erin_account):
    response = api_client_for(cast.alice_reseller).get(ACCOUNTS)

    assert account_ids(response) == {str(carol_account.pk), str(erin_account.pk)}
    assert [row["name"] for row in response.json()["results"]] == ["Carol Corp", "Erin GmbH"]
    assert all(row["can_manage"] for row in response.json()["results"])


def test_a_distributor_sees_its_resellers_customers_read_only(
    cast, carol_account, erin_account, dave_account
):
    response = api_client_for(cast.distributor).get(ACCOUNTS)

    assert account_ids(response) == {str(carol_account.pk), str(erin_account.pk)}
    assert all(row["can_manage"] is False for row in response.json()["results"])
    # A distributor that does not serve Alice sees none of it.
    assert account_ids(api_client_for(cast.other_distributor).get(ACCOUNTS)) == set()


def test_bob_does_not_see_carol(cast, carol_account, dave_account):
    response = api_client_for(cast.bob_reseller).get(ACCOUNTS)

    assert account_ids(response) == {str(dave_account.pk)}
    assert str(carol_account.pk) not in response.content.decode()


def test_the_vendor_sees_none(cast, carol_account):
    assert account_ids(api_client_for(cast.vendor).get(ACCOUNTS)) == set()
    assert account_ids(session_for(cast.vendor_staff).get(ACCOUNTS)) == set()


def test_a_viewer_sees_the_accounts_but_may_not_manage(cast, carol_account):
    for user in (cast.alice_viewer, cast.carol_viewer):
        response = session_for(user).get(ACCOUNTS)
        assert account_ids(response) == {str(carol_account.pk)}
        assert response.json()["results"][0]["can_manage"] is False
    member = session_for(cast.alice_member).get(ACCOUNTS)
    assert member.json()["results"][0]["can_manage"] is True


def test_the_accounts_list_pages_by_name_in_constant_queries(cast, django_assert_max_num_queries):
    """A partner may serve tens of thousands of customers: every page, the first or one found by
    its cursor, costs the same few queries (the key, the page, a capped count), and the pages
    together list each account once, by name."""
    for n in range(7):
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=CustomerFactory(name=f"C{n}"))
    client = api_client_for(cast.alice_reseller)
    expected = sorted(
        SmartAccount.objects.filter(
            organization__reseller_links__reseller=cast.alice_reseller
        ).values_list("name", "pk")
    )

    listed, url, pages = [], f"{ACCOUNTS}?page_size=3", 0
    while url:
        with django_assert_max_num_queries(4):
            response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == len(expected)
        listed += [(row["name"], uuid.UUID(row["id"])) for row in body["results"]]
        url, pages = body["next"], pages + 1

    assert listed == expected and pages == 3
    previous = client.get(response.json()["previous"]).json()
    assert [row["name"] for row in previous["results"]] == [name for name, _ in expected[3:6]]
    assert_problem(client.get(f"{ACCOUNTS}?cursor=forged"), 400, "validation_error")


def test_accounts_list_is_401_without_credentials(cast):
    assert_problem(APIClient().get(ACCOUNTS), 401, "not_authenticated")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_accounts_list_wrong_method_is_405(cast, method):
    before = list(cast.carol_customer.__class__.objects.values_list("pk", "name"))

    response = getattr(api_client_for(cast.alice_reseller), method)(
        ACCOUNTS, {"name": "New"}, format="json"
    )

    assert_problem(response, 405, "method_not_allowed")
    assert list(cast.carol_customer.__class__.objects.values_list("pk", "name")) == before


def test_accounts_list_query_count_is_constant(cast, django_assert_max_num_queries):
    alice = api_client_for(cast.alice_reseller)
    alice.get(ACCOUNTS)  # the API key's last_used_at touch happens once

    def add_customers(n: int) -> None:
        for _ in range(n):
            PartnerLinkFactory(reseller=cast.alice_reseller, customer=CustomerFactory())

    add_customers(2)
    with django_assert_max_num_queries(3) as small:
        assert alice.get(ACCOUNTS).json()["count"] == 3
    add_customers(27)
    with django_assert_max_num_queries(3) as big:
        assert alice.get(ACCOUNTS).json()["count"] == 30
    assert len(big.captured_queries) == len(small.captured_queries)


# --- GET /api/v1/accounts/{id}/licenses ------------------------------------------------------


def rows_by_product(response) -> dict[str, dict]:
    assert response.status_code == 200, response.content
    return {row["product"]: row for row in response.json()["results"]}


def test_one_row_per_application_with_totals_of_active_licenses(cast, carol_account):
    now = timezone.now()
    perpetual = LicenseFactory(
        account=carol_account, product=cast.recording, quantity=10, source="PO-1"
    )
    subscription = LicenseFactory(
        account=carol_account,
        product=cast.recording,
        kind=License.Kind.SUBSCRIPTION,
        quantity=5,
        ends_at=now + timedelta(days=200),
        care_ends_at=now + timedelta(days=200),
        source="PO-2",
    )
    locked = LicenseFactory(
        account=carol_account,
        product=cast.recording,
        quantity=7,
        state=License.State.LOCKED,
        source="PO-3",
    )
    expired = LicenseFactory(
        account=carol_account,
        product=cast.recording,
        kind=License.Kind.SUBSCRIPTION,
        quantity=100,
        state=License.State.EXPIRED,
        ends_at=now - timedelta(days=1),
        care_ends_at=now - timedelta(days=1),
        source="PO-0",
    )
    console = LicenseFactory(account=carol_account, product=cast.console, quantity=3)
    server = ServerFactory(account=carol_account, name="PBX")
    AssignmentFactory(server=server, license=perpetual, quantity=4)
    License.objects.filter(pk=perpetual.pk).update(assigned=4)
    LicenseFactory(account=cast.dave_customer.smart_account, product=cast.recording, quantity=99)

    rows = rows_by_product(api_client_for(cast.carol_customer).get(licenses_url(carol_account.pk)))

    assert list(rows) == ["ATTENDANT_CONSOLE", "CALL_RECORDING"]  # by application name
    recording = rows["CALL_RECORDING"]
    assert (recording["name"], recording["unit"]) == ("Call Recording", "channels")
    assert (recording["total"], recording["assigned"], recording["available"]) == (15, 4, 11)
    assert recording["locked"] == 7  # shown apart, not in total
    assert recording["care_status"] == "active"
    nested = {lic["id"]: lic for lic in recording["licenses"]}
    assert set(nested) == {str(x.pk) for x in (perpetual, subscription, locked, expired)}
    assert nested[str(perpetual.pk)]["source"] == "PO-1"
    assert nested[str(perpetual.pk)]["kind"] == "perpetual"
    assert nested[str(perpetual.pk)]["quantity"] == 10
    assert nested[str(perpetual.pk)]["assigned"] == 4
    assert nested[str(locked.pk)]["state"] == "locked"
    assert nested[str(expired.pk)]["state"] == "expired"
    assert nested[str(expired.pk)]["care_status"] == "expired"
    assert nested[str(subscription.pk)]["ends_at"] is not None
    for field in ("starts_at", "ends_at", "care_ends_at", "care_status"):
        assert field in nested[str(perpetual.pk)]
    assert (rows["ATTENDANT_CONSOLE"]["total"], rows["ATTENDANT_CONSOLE"]["available"]) == (3, 3)
    assert [lic["id"] for lic in rows["ATTENDANT_CONSOLE"]["licenses"]] == [str(console.pk)]


def test_an_application_with_only_locked_capacity_has_zero_total(cast, carol_account):
    LicenseFactory(
        account=carol_account, product=cast.console, quantity=5, state=License.State.LOCKED
    )

    row = rows_by_product(api_client_for(cast.carol_customer).get(licenses_url(carol_account.pk)))[
        "ATTENDANT_CONSOLE"
    ]

    assert (row["total"], row["assigned"], row["available"], row["locked"]) == (0, 0, 0, 5)
    assert row["care_status"] == ""


@pytest.mark.parametrize(
    ("care_in_days", "status"),
    [(365, "active"), (61, "active"), (59, "expiring"), (1, "expiring"), (-1, "expired")],
)
def test_care_status_of_a_row(cast, carol_account, care_in_days, status):
    LicenseFactory(
        account=carol_account,
        product=cast.recording,
        care_ends_at=timezone.now() + timedelta(days=care_in_days),
    )

    rows = rows_by_product(api_client_for(cast.carol_customer).get(licenses_url(carol_account.pk)))

    assert rows["CALL_RECORDING"]["care_status"] == status
    assert rows["CALL_RECORDING"]["licenses"][0]["care_status"] == status


def test_row_care_status_follows_the_earliest_care_end_of_active_licenses(cast, carol_account):
    now = timezone.now()
    LicenseFactory(
        account=carol_account, product=cast.recording, care_ends_at=now + timedelta(days=400)
    )
    LicenseFactory(
        account=carol_account, product=cast.recording, care_ends_at=now + timedelta(days=30)
    )
    # A locked license's care does not count yet.
    LicenseFactory(
        account=carol_account,
        product=cast.recording,
        state=License.State.LOCKED,
        care_ends_at=now + timedelta(days=5),
    )

    row = rows_by_product(api_client_for(cast.carol_customer).get(licenses_url(carol_account.pk)))[
        "CALL_RECORDING"
    ]

    assert row["care_status"] == "expiring"


@pytest.mark.parametrize(
    "who", ["alice_reseller", "distributor", "alice_viewer@session", "carol_viewer@session"]
)
def test_partners_and_viewers_may_read_the_licenses(cast, carol_account, who):
    LicenseFactory(account=carol_account, product=cast.recording, quantity=10)
    if who.endswith("@session"):
        client = session_for(getattr(cast, who.removesuffix("@session")))
    else:
        client = api_client_for(getattr(cast, who))

    rows = rows_by_product(client.get(licenses_url(carol_account.pk)))

    assert rows["CALL_RECORDING"]["total"] == 10


def test_another_tenants_licenses_are_404(cast, carol_account):
    LicenseFactory(account=carol_account, product=cast.recording, quantity=10)

    for org in (cast.bob_reseller, cast.dave_customer, cast.other_distributor, cast.vendor):
        response = api_client_for(org).get(licenses_url(carol_account.pk))
        body = assert_problem(response, 404, "not_found")
        assert "CALL_RECORDING" not in str(body)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.UUID(int=1)), "1"])
def test_unknown_account_is_404(cast, bad_id):
    response = api_client_for(cast.carol_customer).get(licenses_url(bad_id))

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_licenses_wrong_method_is_405(cast, carol_account, method):
    lic = LicenseFactory(account=carol_account, product=cast.recording, quantity=10)

    response = getattr(api_client_for(cast.alice_reseller), method)(
        licenses_url(carol_account.pk),
        {"product": "CALL_RECORDING", "quantity": 1000, "state": "active"},
        format="json",
    )

    assert_problem(response, 405, "method_not_allowed")
    assert list(License.objects.values_list("pk", "quantity", "state")) == [(lic.pk, 10, "active")]


def test_licenses_query_count_is_constant(cast, carol_account, django_assert_max_num_queries):
    carol = api_client_for(cast.carol_customer)
    carol.get(licenses_url(carol_account.pk))  # the API key's last_used_at touch happens once
    now = timezone.now()

    def add_products(n: int) -> None:
        for _ in range(n):
            product = ProductFactory()
            LicenseFactory(account=carol_account, product=product, quantity=5)
            LicenseFactory(
                account=carol_account,
                product=product,
                kind=License.Kind.SUBSCRIPTION,
                quantity=5,
                ends_at=now + timedelta(days=100),
                care_ends_at=now + timedelta(days=100),
            )
            LicenseFactory(
                account=carol_account, product=product, quantity=5, state=License.State.LOCKED
            )

    add_products(5)
    with django_assert_max_num_queries(5) as small:
        response = carol.get(licenses_url(carol_account.pk))
    assert response.json()["count"] == 5
    assert all(len(row["licenses"]) == 3 for row in response.json()["results"])

    add_products(35)
    with django_assert_max_num_queries(5) as big:
        response = carol.get(licenses_url(carol_account.pk))
    assert response.json()["count"] == 40
    assert all(row["total"] == 10 and row["locked"] == 5 for row in response.json()["results"])
    assert all(len(row["licenses"]) == 3 for row in response.json()["results"])
    assert len(big.captured_queries) == len(small.captured_queries)
