"""Over-use: a server reporting more in use than it holds is flagged on the server page, in the
servers list, and through `overused_servers` for the Overview and the digest."""

import pytest
from django.utils.html import strip_tags

from smartaccounts.models import License, SmartAccount
from tokens.models import Server
from tokens.selectors import OverUse, overused_servers, overused_servers_in
from tokens.services import refresh_over_use

from ..factories import AssignmentFactory, LicenseFactory, ServerFactory

pytestmark = pytest.mark.django_db


def squash(html: str) -> str:
    return " ".join(strip_tags(html).split())


@pytest.fixture
def account(cast) -> SmartAccount:
    return cast.carol_customer.smart_account


@pytest.fixture
def milan(cast, account) -> Server:
    """Holds 60 channels of Call Recording and reports 80 in use; holds 5 console seats and
    uses 3; also reports an application the portal does not know."""
    recording = LicenseFactory(account=account, product=cast.recording, quantity=100, assigned=60)
    server = ServerFactory(
        account=account,
        name="PBX-Milan",
        state=Server.State.ACTIVE,
        reported_usage={"CALL_RECORDING": 80, "ATTENDANT_CONSOLE": 3, "UNKNOWN_APP": 9},
    )
    AssignmentFactory(server=server, license=recording, quantity=60)
    console = LicenseFactory(account=account, product=cast.console, quantity=5, assigned=5)
    AssignmentFactory(server=server, license=console, quantity=5)
    refresh_over_use([server.pk])  # what a sync reporting this usage keeps
    return server


def test_a_server_using_more_than_it_holds_is_listed_per_product(cast, account, milan):
    # Within its holding: not listed.
    ServerFactory(
        account=account,
        name="PBX-Rome",
        state=Server.State.ACTIVE,
        reported_usage={"CALL_RECORDING": 0},
    )
    # Deactivated servers' last reports no longer count.
    ServerFactory(
        account=account,
        name="old",
        state=Server.State.DEACTIVATED,
        reported_usage={"CALL_RECORDING": 500},
    )

    found = overused_servers(account)

    assert found == [OverUse(server=milan, product=cast.recording, used=80, held=60)]
    assert found[0].excess == 20


def test_capacity_on_an_expired_license_is_not_held(cast, account, milan):
    expired = LicenseFactory(
        account=account, product=cast.recording, quantity=30, state=License.State.EXPIRED
    )
    AssignmentFactory(server=milan, license=expired, quantity=30)

    assert [(o.used, o.held) for o in overused_servers(account)] == [(80, 60)]


def test_use_of_an_application_the_server_holds_none_of_is_over_use(cast, account):
    server = ServerFactory(
        account=account, name="x", state=Server.State.STALE, reported_usage={"CALL_RECORDING": 2}
    )

    assert overused_servers(account) == [
        OverUse(server=server, product=cast.recording, used=2, held=0)
    ]


def test_other_accounts_are_not_mixed_in(cast, account, milan):
    dave = cast.dave_customer.smart_account
    assert overused_servers(dave) == []
    both = SmartAccount.objects.filter(pk__in=[account.pk, dave.pk])
    assert [o.server for o in overused_servers_in(both)] == [milan]


def test_the_selector_takes_a_fixed_number_of_queries(
    cast, account, milan, django_assert_max_num_queries
):
    servers = [
        ServerFactory(
            account=account,
            name=f"s{n}",
            state=Server.State.ACTIVE,
            reported_usage={"CALL_RECORDING": 1},
        )
        for n in range(10)
    ]
    refresh_over_use([server.pk for server in servers])
    with django_assert_max_num_queries(3):
        assert len(overused_servers_in(SmartAccount.objects.filter(pk=account.pk))) == 11


def test_the_licenses_page_flags_the_application_a_server_over_uses(
    cast, account, milan, client, django_assert_max_num_queries
):
    client.force_login(cast.carol_admin)

    with django_assert_max_num_queries(20):
        page = client.get(f"/accounts/{account.pk}/")

    assert page.status_code == 200
    rows = {
        squash(str(row)).split(" ")[0]: squash(str(row))
        for row in page.content.decode().split('<tbody class="pool-row">')[1:]
    }
    assert "over use PBX-Milan reports 80 channels in use, holds 60" in rows["Call"]
    assert "over use" not in rows["Attendant"]


def test_the_licenses_page_query_count_does_not_grow_with_over_using_servers(
    cast, account, milan, client, django_assert_max_num_queries
):
    recording = License.objects.get(account=account, product=cast.recording)
    for n in range(10):
        server = ServerFactory(
            account=account,
            name=f"PBX-{n}",
            state=Server.State.ACTIVE,
            reported_usage={"CALL_RECORDING": 5},
        )
        AssignmentFactory(server=server, license=recording, quantity=1)
    client.force_login(cast.carol_admin)

    with django_assert_max_num_queries(20):
        page = client.get(f"/accounts/{account.pk}/")

    assert page.content.decode().count("over use") == 11
