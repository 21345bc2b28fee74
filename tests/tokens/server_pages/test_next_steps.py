"""Issue 20, server page: one clear next step in each state (a new server holding nothing, one
holding capacity without a token, a deactivated one), an offline server offered only what it
may hold, servers on the same machine flagged on both pages, and over-use shown with its fix."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from smartaccounts.models import License
from tokens import exchange, services
from tokens.models import ActivationToken, Assignment, Server
from tokens.qrcodes import token_qr_svg

from ...factories import LicenseFactory, ServerFactory
from .conftest import SYSTEM, client_for, shown_token, squash

pytestmark = pytest.mark.django_db


def page_of(user, server: Server, **headers) -> str:
    response = client_for(user).get(f"/servers/{server.pk}/", **headers)
    assert response.status_code == 200
    return response.content.decode()


def section(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"(.*?)</(?:article|section)>', page, re.S)
    assert found, f"no #{element_id}"
    return squash(found.group(1))


# --- A new server: assign capacity first, then the token -------------------------------------


def test_a_new_server_asks_for_capacity_first_and_offers_no_token_yet(cast, server):
    page = page_of(cast.alice_member, server)

    step = section(page, "next-step")
    assert "Next: assign capacity" in step
    assert "holds nothing yet, so it has no activation token" in step
    assert f"/servers/{server.pk}/token/" not in page  # no "make a token" beside it
    # The offline section asks for no token that does not exist yet: it says what comes first.
    offline = section(page, "offline")
    assert "First assign it perpetual capacity above" in offline
    assert 'type="file"' not in page.split('id="offline"')[1].split("</section>")[0]


def test_a_server_holding_capacity_without_a_usable_token_offers_to_make_one(cast, server):
    services.assign_capacity(server=server, product=cast.recording, quantity=2, actor=SYSTEM)
    ActivationToken.objects.filter(server=server).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    page = page_of(cast.alice_member, server)

    step = section(page, "next-step")
    assert "Next: make its activation token" in step
    assert "Make the activation token" in step
    assert f'action="/servers/{server.pk}/token/"' in page
    assert "First make its activation token above" in section(page, "offline")
    # A viewer is told who can, and gets no button.
    viewer = page_of(cast.carol_viewer, server)
    assert "administrator can make one" in section(viewer, "next-step")
    assert "/token/" not in viewer


def test_a_server_with_a_token_out_waits_for_activation(cast, server):
    services.assign_capacity(server=server, product=cast.recording, quantity=2, actor=SYSTEM)

    page = page_of(cast.alice_member, server)

    assert "Waiting for activation" in section(page, "next-step")
    assert 'type="file"' in page.split('id="offline"')[1]


# --- Deactivated -----------------------------------------------------------------------------


def test_a_deactivated_server_says_when_and_that_its_token_no_longer_works(cast, server):
    services.assign_capacity(server=server, product=cast.recording, quantity=2, actor=SYSTEM)
    services.deactivate_server(server=server, actor=SYSTEM)
    server.refresh_from_db()

    page = page_of(cast.alice_member, server)

    step = section(page, "next-step")
    assert re.search(r"Deactivated \d{4}-\d\d-\d\d \d\d:\d\d UTC", step)
    assert "its activation token and server credential stopped working" in step
    assert "replaced" not in page


# --- Offline: only what it may hold ----------------------------------------------------------


@pytest.fixture
def offline_server(cast, account) -> Server:
    """Offline, holding 3 perpetual channels; the account also has 4 perpetual and 6
    subscription channels left, and 5 subscription seats of Attendant Console only."""
    end = timezone.now() + timedelta(days=200)
    LicenseFactory(account=account, product=cast.recording, quantity=7)
    LicenseFactory(
        account=account, product=cast.recording, kind="subscription", quantity=6, ends_at=end
    )
    LicenseFactory(
        account=account, product=cast.console, kind="subscription", quantity=5, ends_at=end
    )
    server = ServerFactory(account=account, name="PBX-Vault")
    services.assign_capacity(server=server, product=cast.recording, quantity=3, actor=SYSTEM)
    Server.objects.filter(pk=server.pk).update(state=Server.State.OFFLINE, fingerprint="fp-v")
    return Server.objects.get(pk=server.pk)


def test_an_offline_server_is_offered_perpetual_capacity_only(cast, offline_server):
    page = page_of(cast.alice_member, offline_server)

    assert "Subscriptions need online activation." in section(page, "offline-capacity")
    # Subscription only: no field, the reason instead.
    assert 'id="qty-ATTENDANT_CONSOLE"' not in page
    assert "Subscription only: subscriptions need online activation." in squash(page)
    # Both kinds: the field goes up to the perpetual capacity only, and says what it leaves out.
    field = re.search(r'<input id="qty-CALL_RECORDING"[^>]*>', page).group(0)
    assert 'max="7"' in field and 'value="3"' in field
    assert "of 7 channels" in squash(page)
    assert "6 more on subscription not offered: subscriptions need online activation." in squash(
        page
    )
    # What the page offers, the service takes.
    response = client_for(cast.alice_member).post(
        f"/servers/{offline_server.pk}/assign/CALL_RECORDING/", {"quantity": 7}
    )
    assert response.status_code == 200
    assert Assignment.objects.filter(server=offline_server).count() == 1
    assert not Assignment.objects.filter(
        server=offline_server, license__kind=License.Kind.SUBSCRIPTION
    ).exists()


def test_an_online_server_is_offered_both_kinds(cast, account, pool):
    server = ServerFactory(account=account, name="PBX-Online", state=Server.State.ACTIVE)

    page = page_of(cast.alice_member, server)

    assert 'id="qty-ATTENDANT_CONSOLE"' in page and "Subscription only" not in page


# --- The same machine ------------------------------------------------------------------------


def test_two_servers_on_the_same_machine_point_at_each_other(cast, account, pool):
    milan = ServerFactory(account=account, name="PBX-Milan", state="active", fingerprint="fp-1")
    copy = ServerFactory(account=account, name="PBX-Copy", state="stale", fingerprint="fp-1")
    ServerFactory(account=account, name="Gone", state="deactivated", fingerprint="fp-1")
    alone = ServerFactory(account=account, name="PBX-Rome", state="active", fingerprint="fp-2")
    other = ServerFactory(
        account=cast.dave_customer.smart_account, name="Dave", state="active", fingerprint="fp-1"
    )

    on_milan = page_of(cast.alice_member, milan)
    on_copy = page_of(cast.alice_member, copy)

    assert f'href="/servers/{copy.pk}/">PBX-Copy</a>' in on_milan.split('id="same-machine"')[1]
    assert f'href="/servers/{milan.pk}/">PBX-Milan</a>' in on_copy.split('id="same-machine"')[1]
    text = section(on_milan, "same-machine")
    assert "Possible clone. PBX-Copy is also in use on the same machine as this server" in text
    assert "Gone" not in text and "Dave" not in text
    assert 'id="same-machine"' not in page_of(cast.alice_member, alone)
    assert 'id="same-machine"' not in page_of(cast.bob_admin, other)


def test_the_same_machine_check_costs_the_same_queries_for_one_copy_or_many(
    cast, account, pool, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    milan = ServerFactory(account=account, name="PBX-Milan", state="active", fingerprint="fp-1")
    ServerFactory(account=account, name="copy-0", state="active", fingerprint="fp-1")
    client = client_for(cast.alice_member)
    client.get(f"/servers/{milan.pk}/")
    with CaptureQueriesContext(connection) as one:
        client.get(f"/servers/{milan.pk}/")
    for n in range(1, 30):
        ServerFactory(account=account, name=f"copy-{n}", state="active", fingerprint="fp-1")

    with django_assert_max_num_queries(len(one)):
        page = client.get(f"/servers/{milan.pk}/").content.decode()

    assert page.split('id="same-machine"')[1].split("</article>")[0].count("<a ") == 10


# --- Over-use with its fix -------------------------------------------------------------------


def over_using(account, product, held: int, used: int) -> Server:
    server = ServerFactory(account=account, name="PBX-Busy")
    services.assign_capacity(server=server, product=product, quantity=held, actor=SYSTEM)
    Server.objects.filter(pk=server.pk).update(
        state=Server.State.ACTIVE, reported_usage={product.code: used}, fingerprint="fp-b"
    )
    services.refresh_over_use([server.pk])
    return Server.objects.get(pk=server.pk)


def test_over_use_offers_to_assign_what_is_available_in_one_action(cast, account):
    LicenseFactory(account=account, product=cast.recording, quantity=60)
    server = over_using(account, cast.recording, held=10, used=30)

    page = page_of(cast.alice_member, server)

    fixes = page.split('id="over-use-fixes"')[1].split("</ul>")[0]
    assert "Assign 20 more of Call Recording (50 available)" in squash(fixes)
    assert f'action="/servers/{server.pk}/assign/CALL_RECORDING/"' in fixes
    assert 'name="quantity" value="30"' in fixes
    assert "Order" not in fixes
    # Pressing it raises the assignment through the assignment service; the over-use is gone.
    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 30}
    )
    assert response.status_code == 200
    assert sum(Assignment.objects.filter(server=server).values_list("quantity", flat=True)) == 30
    assert 'id="over-use"' not in response.content.decode()
    assert not Server.objects.get(pk=server.pk).overused


def test_over_use_beyond_what_is_available_says_what_to_order(cast, account):
    LicenseFactory(account=account, product=cast.recording, quantity=15)
    server = over_using(account, cast.recording, held=10, used=30)

    fixes = squash(page_of(cast.alice_member, server).split('id="over-use-fixes"')[1])

    assert "Assign 5 more of Call Recording (5 available)" in fixes
    assert "Then order 15 more channels of Call Recording (CALL_RECORDING)" in fixes

    Assignment.objects.all().delete()  # now nothing: all of it is to order
    License.objects.filter(account=account).update(quantity=10, assigned=10)
    ServerFactory(account=account, name="other")
    fixes = squash(page_of(cast.carol_viewer, server).split('id="over-use-fixes"')[1])
    assert "Order 30 more channels of Call Recording (CALL_RECORDING)" in fixes
    assert "the account has none available" in fixes and "Assign" not in fixes.split("</ul>")[0]


# --- Beside a fresh token: the agent's command and a QR code ---------------------------------


def test_a_fresh_token_comes_with_the_agent_command_and_a_qr_code_drawn_here(cast, server):
    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 2}
    )

    page = response.content.decode()
    token = shown_token(response)
    command = re.search(r'<input id="agent-command"[^>]*\bvalue="([^"]*)"', page).group(1)
    assert command == f"appsuite-agent activate {token} --url https://licensing.example.test"
    svg = re.search(r"<svg\b.*?</svg>", page, re.S).group(0)
    assert svg == token_qr_svg(token)
    assert 'id="activation-token-qr"' in svg and "<title>QR code of the activation token" in svg
    # Nothing the CSP refuses (no style attribute or element, no script), nothing fetched.
    assert not re.search(r"\bstyle\b|<script|href=|xlink", svg)
    # Shown once: the next view of the page has neither.
    later = client_for(cast.alice_member).get(f"/servers/{server.pk}/").content.decode()
    assert token not in later and "<svg" not in later.split('id="server-body"')[1]


# --- Offline: what to do -----------------------------------------------------------------------


def test_an_offline_server_says_when_its_license_file_needs_refreshing(cast, server):
    token = services.assign_capacity(
        server=server, product=cast.recording, quantity=2, actor=SYSTEM
    ).token
    request = exchange.OfflineRequest(
        token=token.raw, fingerprint="fp-air", hostname="air.local", version="W26", nonce="n-1"
    )
    exchange.activate_offline(server=server, request=request, actor=SYSTEM)

    step = section(page_of(cast.alice_member, server), "next-step")
    assert "Activated offline: nothing to do" in step
    assert "upload its request file again below" in step

    services.assign_capacity(server=server, product=cast.recording, quantity=3, actor=SYSTEM)
    step = section(page_of(cast.alice_member, server), "next-step")
    assert "Next: refresh its license file" in step
    assert "Upload its request file again below" in step
    assert "can issue a new file" in section(page_of(cast.carol_viewer, server), "next-step")
