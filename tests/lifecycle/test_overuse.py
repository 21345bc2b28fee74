"""Over-use (issue 9, item 8): a server reporting more in use than it holds shows in the
account Overview's Needs attention and in the reseller's digest, once per holding."""

import pytest
from django.core import mail
from django.utils import timezone

from lifecycle.digests import build_digest, send_partner_digests
from lifecycle.models import Digest
from lifecycle.services import run_daily_jobs
from smartaccounts.actors import Actor
from tokens import services
from tokens.models import Server

from ..factories import CustomerFactory, LicenseFactory, PartnerLinkFactory
from .conftest import START, at, subscription

pytestmark = pytest.mark.django_db


def server_using(account, name: str, held: dict, usage: dict, state: str = "active") -> Server:
    """A server holding `held` {product: quantity} that last reported `usage` {code: n}."""
    system = Actor.system("tests")
    server = services.create_server(account=account, name=name, purpose="production", actor=system)
    for product, quantity in held.items():
        services.assign_capacity(server=server, product=product, quantity=quantity, actor=system)
    Server.objects.filter(pk=server.pk).update(
        state=state, reported_usage=usage, last_sync_at=START
    )
    services.refresh_over_use([server.pk])  # what a sync reporting `usage` keeps
    return server


@pytest.fixture
def overused(cast, carol_account):
    rec, console = cast.recording, cast.console
    LicenseFactory(account=carol_account, product=rec, quantity=100, care_ends_at=at(days=300))
    LicenseFactory(account=carol_account, product=console, quantity=20, care_ends_at=at(days=300))
    over = server_using(
        carol_account,
        "PBX-1",
        {rec: 60, console: 5},
        {"CALL_RECORDING": 80, "ATTENDANT_CONSOLE": 5},
    )
    server_using(carol_account, "PBX-2", {rec: 30}, {"CALL_RECORDING": 30})  # within
    server_using(carol_account, "PBX-3", {}, {"CALL_RECORDING": 9}, state="deactivated")
    return over


def test_overuse_shows_in_needs_attention_on_the_overview(cast, carol_account, client, overused):
    client.force_login(cast.alice_member)

    response = client.get(f"/accounts/{carol_account.pk}/overview/")

    assert response.status_code == 200
    o = response.context["overview"]
    [(server, code, used, held, excess)] = [
        (u.server, u.product.code, u.used, u.held, u.excess) for u in o.overused
    ]
    assert (server, code, used, held, excess) == (overused, "CALL_RECORDING", 80, 60, 20)
    assert o.attention_count == 1
    page = response.content.decode()
    assert "Using more than they hold" in page
    assert "reports <strong>80 channels</strong> of Call Recording in use against 60 assigned" in (
        page
    )
    assert "PBX-2" not in page.split("What needs attention")[1]
    assert '<p class="big">1</p>' in page


def test_the_customer_sees_its_overuse_too(cast, carol_account, client, overused):
    client.force_login(cast.carol_viewer)
    page = client.get(f"/accounts/{carol_account.pk}/overview/").content.decode()
    assert "of Call Recording in use against 60 assigned: 20 over" in page


def test_overuse_is_in_the_resellers_digest_once_per_holding(
    cast, carol_account, overused, clock, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert send_partner_digests(now=timezone.now()) == 1

    digest = Digest.objects.get(partner=cast.alice_reseller)
    assert digest.content["overuse"] == [
        {
            "customer": "Carol Corp",
            "server": "PBX-1",
            "product": "Call Recording",
            "unit": "channels",
            "used": 80,
            "held": 60,
        }
    ]
    (message,) = mail.outbox
    assert (
        "- Carol Corp: PBX-1 reports 80 channels of Call Recording in use, 60 assigned"
        in message.body
    )
    assert "Servers using more than they hold" in message.alternatives[0][0]

    clock.move_to(at(days=1))
    assert send_partner_digests(now=timezone.now()) == 0  # told already

    # The reseller raises the holding, still short of the use: told again.
    services.assign_capacity(
        server=overused, product=cast.recording, quantity=70, actor=Actor.system("tests")
    )
    clock.move_to(at(days=2))
    assert send_partner_digests(now=timezone.now()) == 1
    (item,) = Digest.objects.get(day=at(days=2).date()).content["overuse"]
    assert (item["used"], item["held"]) == (80, 70)


def test_another_resellers_overuse_stays_out_of_the_digest(
    cast, carol_account, dave_account, clock
):
    LicenseFactory(account=dave_account, product=cast.recording, quantity=10)
    server_using(dave_account, "dave-pbx", {cast.recording: 10}, {"CALL_RECORDING": 50})

    send_partner_digests(now=timezone.now())

    assert not Digest.objects.filter(partner=cast.alice_reseller).exists()
    bob = Digest.objects.get(partner=cast.bob_reseller).content
    assert [(i["server"], i["used"], i["held"]) for i in bob["overuse"]] == [("dave-pbx", 50, 10)]


@pytest.mark.parametrize("customers", [1, 12])
def test_the_resellers_digest_takes_a_constant_number_of_queries(
    cast, django_assert_max_num_queries, customers
):
    for n in range(customers):
        customer = CustomerFactory(name=f"Grown {n}")
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=customer)
        account = customer.smart_account
        LicenseFactory(account=account, product=cast.recording, care_ends_at=at(days=20 + n))
        server_using(account, f"pbx-{n}", {cast.recording: 5}, {"CALL_RECORDING": 6 + n})
        server_using(account, f"stale-{n}", {}, {}, state="stale")

    # Its watermarks, a count and a bounded read per section, over-use's three and its told.
    with django_assert_max_num_queries(17):
        draft = build_digest(cast.alice_reseller, timezone.now())

    sections = draft.sections
    assert len(sections["overuse"]) == customers
    assert len(sections["terms_ending"]) == customers
    assert len(sections["stale_servers"]) == customers


def test_the_renewals_page_lists_overuse_across_customers(cast, client, overused):
    client.force_login(cast.alice_member)
    page = client.get("/renewals/").content.decode()
    assert "PBX-1</a> (Carol Corp): 80 channels of Call Recording in use, 60 assigned" in page

    client.force_login(cast.bob_admin)
    page = client.get("/renewals/").content.decode()
    assert "PBX-1" not in page and "Carol Corp" not in page


def partner_sees(client, cast) -> tuple[list[str], list[str]]:
    """The servers over-used on the reseller's dashboard, and in its digest: today's if the
    daily jobs sent one, else one built now."""
    client.force_login(cast.alice_member)
    dashboard = [over.server.name for over in client.get("/renewals/").context["overused"]]
    sent = Digest.objects.filter(partner=cast.alice_reseller, day=timezone.now().date()).first()
    content = sent.content if sent else build_digest(cast.alice_reseller, timezone.now()).sections
    return dashboard, [item["server"] for item in content["overuse"]]


def account_shows(client, cast, account) -> list[str]:
    client.force_login(cast.alice_member)
    overview = client.get(f"/accounts/{account.pk}/overview/").context["overview"]
    return sorted({over.server.name for over in overview.overused})


def test_after_a_subscription_expires_the_overview_and_the_partner_agree(
    cast, carol_account, client, clock
):
    """The expiry job refreshes the over-use flag of the servers holding what expired: the
    account's Overview and the partner's dashboard and digest name the same servers."""
    term = subscription(carol_account, cast.recording, at(days=1), auto_renew=False, quantity=50)
    LicenseFactory(account=carol_account, product=cast.recording, quantity=10, care_ends_at=at(300))
    server = server_using(carol_account, "PBX-7", {term.product: 40}, {"CALL_RECORDING": 40})
    assert account_shows(client, cast, carol_account) == []
    assert partner_sees(client, cast) == ([], [])

    clock.move_to(at(days=2))
    assert run_daily_jobs()["expired"] == 1

    assert Server.objects.get(pk=server.pk).overused
    assert account_shows(client, cast, carol_account) == ["PBX-7"]
    assert partner_sees(client, cast) == (["PBX-7"], ["PBX-7"])


def test_the_stale_job_refreshes_the_over_use_of_the_servers_it_marks(
    cast, carol_account, client, clock
):
    """A flag out of step with the holdings (an expiry before the expiry job refreshed flags)
    is put right when the server goes stale: the partner then sees what the account shows."""
    lic = LicenseFactory(account=carol_account, product=cast.recording, quantity=50)
    server = server_using(carol_account, "PBX-8", {lic.product: 40}, {"CALL_RECORDING": 45})
    Server.objects.filter(pk=server.pk).update(overused=False)  # out of step
    assert account_shows(client, cast, carol_account) == ["PBX-8"]
    assert partner_sees(client, cast) == ([], [])

    clock.move_to(at(days=5))
    assert run_daily_jobs()["stale"] == 1

    assert account_shows(client, cast, carol_account) == ["PBX-8"]
    assert partner_sees(client, cast) == (["PBX-8"], ["PBX-8"])
