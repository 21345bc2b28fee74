"""Portal pages for servers: the customer picker, an account's servers, a server page that
assigns capacity and shows its activation token once, regenerate, rename and deactivate
(STYLE 12, S9), and a bounded number of queries on a large account."""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, Product, SmartAccount
from smartaccounts.secrets import hash_secret
from tokens import services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential
from tokens.secrets import token_checksum_ok

from ..factories import CustomerFactory, LicenseFactory, PartnerLinkFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
TOKEN_BOX = re.compile(r'<input id="activation-token"[^>]*\bvalue="([^"]*)"')
# What any page of one server may not show: the secret, once its single showing is over.
ANY_TOKEN = re.compile(r"act_[a-z2-7]{39}")
# Users who may look at Carol's account but not change it, and users of another tenant.
READ_ONLY = ["alice_viewer", "carol_viewer", "distributor_admin"]
OUTSIDERS = ["bob_admin"]
MAX_QUERIES = 20


# --- Helpers ---------------------------------------------------------------------------------


def squash(html: str) -> str:
    return " ".join(strip_tags(html).split())


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def snapshot() -> dict[str, set]:
    """Everything these pages may write, to compare before and after a refused request."""
    return {
        "servers": set(Server.objects.values_list("pk", "account_id", "name", "purpose", "state")),
        "licenses": set(License.objects.values_list("pk", "quantity", "assigned", "state")),
        "assignments": set(Assignment.objects.values_list("server_id", "license_id", "quantity")),
        "tokens": set(ActivationToken.objects.values_list("pk", "revoked_at", "used_at")),
        "credentials": set(ServerCredential.objects.values_list("pk", "revoked_at")),
        "audit": set(AuditEvent.objects.values_list("pk", flat=True)),
    }


def picker_rows(html: str) -> dict[str, list[str]]:
    """{customer name: [applications, servers, care expiring soon]} from the picker table."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.S)
        if len(cells) == 4:
            name = squash(re.search(r"<strong>(.*?)</strong>", cells[0], re.S).group(1))
            rows[name] = [squash(cell) for cell in cells[1:]]
    return rows


def listed_servers(html: str) -> list[str]:
    """Server names in the servers table, in order."""
    return [
        squash(name)
        for name in re.findall(r'<a href="/servers/[^"]+/"><strong>(.*?)</strong>', html)
    ]


def server_row(html: str, name: str) -> str:
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        if f"<strong>{name}</strong>" in row:
            return squash(row)
    raise AssertionError(f"no row for {name}")


def held(server: Server) -> int:
    return sum(Assignment.objects.filter(server=server).values_list("quantity", flat=True))


def assigned(product: Product) -> int:
    return sum(License.objects.filter(product=product).values_list("assigned", flat=True))


def shown_token(response) -> str:
    found = TOKEN_BOX.findall(response.content.decode())
    assert len(found) == 1, response.content.decode()
    return found[0]


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture
def account(cast) -> SmartAccount:
    return cast.carol_customer.smart_account


@pytest.fixture
def pool(cast, account):
    """Carol holds 10 channels of Call Recording and 5 seats of Attendant Console."""
    LicenseFactory(account=account, product=cast.recording, quantity=10, source="PO-1")
    LicenseFactory(account=account, product=cast.console, quantity=5, source="PO-2")
    # Bob's customer has capacity of the same product: it must never count for Carol.
    LicenseFactory(account=cast.dave_customer.smart_account, product=cast.recording, quantity=50)


@pytest.fixture
def server(account, pool) -> Server:
    return Server.objects.create(account=account, name="PBX-Milan", purpose="production")


@pytest.fixture
def minted(cast, server) -> str:
    """The server holds 4 channels; returns the token the portal showed for it."""
    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 4}
    )
    assert response.status_code == 200
    return shown_token(response)


# --- Customer picker -------------------------------------------------------------------------


@pytest.fixture
def picker_data(cast):
    """Carol: two applications, two servers in use, two licenses whose care ends within 60
    days. Erin: a second customer of Alice with nothing yet. Dave: Bob's customer."""
    now = timezone.now()
    carol = cast.carol_customer.smart_account
    LicenseFactory(account=carol, product=cast.recording, care_ends_at=now + timedelta(days=300))
    LicenseFactory(account=carol, product=cast.recording, care_ends_at=now + timedelta(days=20))
    LicenseFactory(account=carol, product=cast.console, care_ends_at=now + timedelta(days=59))
    # Not counted: locked and expired licenses, care already over, a deactivated server.
    LicenseFactory(account=carol, product=cast.analytics, state=License.State.LOCKED)
    LicenseFactory(account=carol, product=cast.billing, state=License.State.EXPIRED)
    LicenseFactory(account=carol, product=cast.console, care_ends_at=now - timedelta(days=1))
    Server.objects.create(account=carol, name="one")
    Server.objects.create(account=carol, name="two", state=Server.State.ACTIVE)
    Server.objects.create(account=carol, name="gone", state=Server.State.DEACTIVATED)
    erin = CustomerFactory(name="Erin Ltd")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    LicenseFactory(account=cast.dave_customer.smart_account, product=cast.recording)
    return carol


def test_the_picker_lists_the_resellers_customers_with_their_counts(cast, picker_data):
    response = client_for(cast.alice_viewer).get("/customers/")

    assert response.status_code == 200
    page = response.content.decode()
    assert picker_rows(page) == {"Carol Corp": ["2", "2", "2"], "Erin Ltd": ["0", "0", "0"]}
    assert f'href="/accounts/{picker_data.pk}/"' in page
    assert "Dave Inc" not in page
    assert 'id="picker-rows"' in page


def test_the_picker_searches_by_name_in_any_case(cast, picker_data):
    client = client_for(cast.alice_member)

    assert list(picker_rows(client.get("/customers/?q=CAR").content.decode())) == ["Carol Corp"]
    assert list(picker_rows(client.get("/customers/?q=erin").content.decode())) == ["Erin Ltd"]
    # Bob's customer is not found by name either.
    nothing = client.get("/customers/?q=Dave").content.decode()
    assert picker_rows(nothing) == {}
    assert "No customer matches “Dave”" in nothing


def test_an_htmx_search_returns_only_the_rows_fragment(cast, picker_data):
    response = client_for(cast.alice_member).get("/customers/?q=erin", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    page = response.content.decode()
    assert response.templates[0].name == "tokens/_picker_rows.html"
    assert "<html" not in page and "<header" not in page and 'id="picker-rows"' not in page
    assert picker_rows(page) == {"Erin Ltd": ["0", "0", "0"]}


def test_the_distributor_sees_its_resellers_customers_read_only(cast, picker_data):
    # Stray's customer belongs to another distributor's reseller.
    stray_customer = CustomerFactory(name="Stray Customer")
    PartnerLinkFactory(reseller=cast.stray_reseller, customer=stray_customer)

    response = client_for(cast.distributor_admin).get("/customers/")

    assert response.status_code == 200
    assert set(picker_rows(response.content.decode())) == {"Carol Corp", "Erin Ltd"}


def test_the_picker_is_404_for_customers_and_vendor_staff(cast, picker_data):
    for user in (cast.carol_admin, cast.carol_viewer, cast.vendor_staff):
        response = client_for(user).get("/customers/")
        assert response.status_code == 404, user.email
        assert picker_rows(response.content.decode()) == {}


def test_the_picker_is_paginated(cast):
    for n in range(30):
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=CustomerFactory(name=f"C{n:02d}"))
    client = client_for(cast.alice_member)

    first = picker_rows(client.get("/customers/").content.decode())
    second_page = client.get("/customers/?page=2").content.decode()

    assert len(first) == 25
    assert set(first) | set(picker_rows(second_page)) == {"Carol Corp"} | {
        f"C{n:02d}" for n in range(30)
    }
    assert "Page 2 of 2" in second_page


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_picker_refuses_other_methods(cast, method):
    response = getattr(client_for(cast.alice_admin), method)("/customers/")

    assert response.status_code == 405


# --- Anonymous visitors ----------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_login_and_change_nothing(cast, server):
    before = snapshot()
    client = Client()
    paths = [
        "/customers/",
        f"/accounts/{server.account_id}/servers/",
        f"/servers/{server.pk}/",
        f"/servers/{server.pk}/deactivate/",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/?next="), path
    posts = {
        f"/accounts/{server.account_id}/servers/": {"name": "x", "purpose": "test"},
        f"/servers/{server.pk}/assign/CALL_RECORDING/": {"quantity": 1},
        f"/servers/{server.pk}/token/": {},
        f"/servers/{server.pk}/rename/": {"name": "x"},
        f"/servers/{server.pk}/deactivate/": {},
    }
    for path, body in posts.items():
        response = client.post(path, body)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/"), path
    assert snapshot() == before


# --- Servers page: list and filter -----------------------------------------------------------


@pytest.fixture
def fleet(cast, account, pool):
    """Two servers in use holding capacity, one deactivated; one of Bob's customer."""
    milan = Server.objects.create(account=account, name="PBX-Milan")
    rome = Server.objects.create(
        account=account,
        name="PBX-Rome",
        state=Server.State.ACTIVE,
        reported_version="12.1.4",
        reported_usage={"CALL_RECORDING": 3},
        last_sync_at=timezone.now(),
    )
    Server.objects.create(account=account, name="Old-Box", state=Server.State.DEACTIVATED)
    Server.objects.create(account=cast.dave_customer.smart_account, name="Dave-Box")
    services.assign_capacity(server=milan, product=cast.recording, quantity=4, actor=SYSTEM)
    services.assign_capacity(server=rome, product=cast.recording, quantity=2, actor=SYSTEM)
    services.assign_capacity(server=rome, product=cast.console, quantity=1, actor=SYSTEM)
    return milan, rome


def test_the_servers_page_lists_the_servers_in_use_and_what_they_hold(cast, account, fleet):
    response = client_for(cast.alice_viewer).get(f"/accounts/{account.pk}/servers/")

    assert response.status_code == 200
    page = response.content.decode()
    assert listed_servers(page) == ["PBX-Milan", "PBX-Rome"]
    assert "Call Recording: 4 channels" in server_row(page, "PBX-Milan")
    rome = server_row(page, "PBX-Rome")
    assert "Active (online)" in rome and "12.1.4" in rome
    assert "Attendant Console: 1 seats" in rome
    assert "Call Recording: 2 channels (3 in use)" in rome
    assert "Deactivated (1)" in squash(page)
    assert "Dave-Box" not in page


@pytest.mark.parametrize(
    ("state", "names"),
    [
        ("deactivated", ["Old-Box"]),
        ("active", ["PBX-Rome"]),
        ("pending", ["PBX-Milan"]),
        ("stale", []),
        ("nonsense", ["PBX-Milan", "PBX-Rome"]),
    ],
)
def test_the_servers_page_filters_by_state(cast, account, fleet, state, names):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/?state={state}")

    assert response.status_code == 200
    assert listed_servers(response.content.decode()) == names


def test_the_distributor_and_viewers_read_the_servers_page_without_the_add_form(
    cast, account, fleet
):
    for name in READ_ONLY:
        response = client_for(getattr(cast, name)).get(f"/accounts/{account.pk}/servers/")
        assert response.status_code == 200, name
        page = response.content.decode()
        assert listed_servers(page) == ["PBX-Milan", "PBX-Rome"], name
        assert "Add a server" not in page, name
        assert "Read only" in page, name
    managers = client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/")
    assert "Add a server" in managers.content.decode()


# --- Servers page: create --------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice_member", "alice_admin", "carol_admin"])
def test_creating_a_server_redirects_to_its_page(cast, account, pool, who):
    client = client_for(getattr(cast, who))

    response = client.post(
        f"/accounts/{account.pk}/servers/", {"name": "  PBX   Turin ", "purpose": "test"}
    )

    server = Server.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/servers/{server.pk}/"
    assert (server.account, server.name, server.purpose, server.state) == (
        account,
        "PBX Turin",
        "test",
        Server.State.PENDING,
    )
    assert not ActivationToken.objects.exists()  # a token comes with the first capacity
    event = AuditEvent.objects.get(action="server.created")
    assert event.object_id == str(server.pk)
    assert event.actor_user == getattr(cast, who)
    page = client.get(response["Location"]).content.decode()
    assert "Server “PBX Turin” created" in page
    assert not ANY_TOKEN.search(page)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "production"}, "name"),
        ({"name": "   ", "purpose": "production"}, "name"),
        ({"name": "x" * 101, "purpose": "production"}, "name"),
        ({"name": "PBX", "purpose": "mainframe"}, "purpose"),
        ({"name": "PBX"}, "purpose"),
    ],
)
def test_an_invalid_server_form_is_400_with_the_error_beside_the_field(cast, account, body, field):
    before = snapshot()

    response = client_for(cast.alice_member).post(f"/accounts/{account.pk}/servers/", body)

    assert response.status_code == 400
    page = response.content.decode()
    # The error follows its own input, before the next field's label.
    beside = re.search(
        rf'<(?:input|select)[^>]*id="id_{field}"[^>]*>.*?'
        rf'<ul class="errorlist" id="id_{field}_errors">',
        page,
        re.S,
    )
    assert beside is not None, page
    assert "<label" not in page[beside.start() : beside.end()]
    assert 'aria-invalid="true"' in page[beside.start() : beside.end()]
    assert "<details open" in page  # the form stays open to be corrected
    assert snapshot() == before


@pytest.mark.parametrize("who", ["alice_viewer", "carol_viewer", "distributor_admin"])
def test_read_only_roles_may_not_create_a_server(cast, account, who):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(
        f"/accounts/{account.pk}/servers/", {"name": "PBX", "purpose": "test"}
    )

    assert response.status_code == 403
    assert snapshot() == before


def test_another_tenants_servers_page_is_404(cast, account, fleet):
    before = snapshot()
    bob = client_for(cast.bob_admin)

    assert bob.get(f"/accounts/{account.pk}/servers/").status_code == 404
    response = bob.post(f"/accounts/{account.pk}/servers/", {"name": "PBX", "purpose": "test"})
    assert response.status_code == 404
    dave = cast.dave_customer.smart_account
    assert client_for(cast.alice_admin).get(f"/accounts/{dave.pk}/servers/").status_code == 404
    assert client_for(cast.carol_admin).get(f"/accounts/{dave.pk}/servers/").status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("account_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_bad_account_id_on_the_servers_page_is_404(cast, account_id):
    client = client_for(cast.alice_admin)

    assert client.get(f"/accounts/{account_id}/servers/").status_code == 404
    response = client.post(f"/accounts/{account_id}/servers/", {"name": "x", "purpose": "test"})
    assert response.status_code == 404
    assert not Server.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_the_servers_page_refuses_other_methods(cast, account, method):
    response = getattr(client_for(cast.alice_admin), method)(f"/accounts/{account.pk}/servers/")

    assert response.status_code == 405
    assert not Server.objects.exists()


# --- Server page -----------------------------------------------------------------------------


def test_the_server_page_shows_what_it_holds_of_what_is_available(cast, fleet):
    milan, _ = fleet

    response = client_for(cast.alice_member).get(f"/servers/{milan.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    table = page.split('class="holdings"')[1].split("</table>")[0]
    rows = {
        squash(re.search(r"<strong>(.*?)</strong>", row, re.S).group(1)): squash(row)
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if "<td" in row
    }
    # 10 channels: Milan holds 4, Rome 2, so 4 are left and Milan could hold up to 8.
    assert "of 8 channels" in rows["Call Recording"]
    assert re.search(r'id="qty-CALL_RECORDING"[^>]*value="4"', page)
    assert rows["Call Recording"].endswith("Save 4 —")
    assert "of 4 seats" in rows["Attendant Console"]
    assert set(rows) == {"Call Recording", "Attendant Console"}
    assert "PBX-Milan" in page and "Pending activation" in page


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_see_the_server_page_without_forms(cast, fleet, who):
    milan, _ = fleet

    response = client_for(getattr(cast, who)).get(f"/servers/{milan.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>4</strong> of 8 channels" in page
    assert "/assign/" not in page and "/rename/" not in page and "/deactivate/" not in page


def test_another_tenants_server_page_is_404(cast, fleet):
    milan, _ = fleet
    dave_box = Server.objects.get(name="Dave-Box")

    assert client_for(cast.bob_admin).get(f"/servers/{milan.pk}/").status_code == 404
    assert client_for(cast.alice_admin).get(f"/servers/{dave_box.pk}/").status_code == 404
    assert client_for(cast.carol_viewer).get(f"/servers/{dave_box.pk}/").status_code == 404


@pytest.mark.parametrize("server_id", ["not-a-uuid", str(uuid.UUID(int=1))])
def test_a_bad_server_id_is_404_on_every_server_url(cast, server, server_id):
    before = snapshot()
    client = client_for(cast.alice_admin)

    assert client.get(f"/servers/{server_id}/").status_code == 404
    assert client.get(f"/servers/{server_id}/deactivate/").status_code == 404
    for path, body in {
        f"/servers/{server_id}/assign/CALL_RECORDING/": {"quantity": 1},
        f"/servers/{server_id}/token/": {},
        f"/servers/{server_id}/rename/": {"name": "x"},
        f"/servers/{server_id}/deactivate/": {},
    }.items():
        assert client.post(path, body).status_code == 404, path
    assert snapshot() == before


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", "assign/CALL_RECORDING/"),
        ("get", "token/"),
        ("get", "rename/"),
        ("put", "assign/CALL_RECORDING/"),
        ("delete", "token/"),
        ("put", "deactivate/"),
        ("delete", "deactivate/"),
    ],
)
def test_server_actions_refuse_other_methods(cast, server, method, suffix):
    before = snapshot()

    response = getattr(client_for(cast.alice_admin), method)(f"/servers/{server.pk}/{suffix}")

    assert response.status_code == 405
    assert snapshot() == before


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_server_page_refuses_other_methods(cast, server, method):
    response = getattr(client_for(cast.alice_admin), method)(f"/servers/{server.pk}/")

    assert response.status_code == 405


# --- Assign capacity and the activation token -----------------------------------------------


def test_the_first_capacity_of_a_pending_server_shows_its_token_once(cast, server):
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 4})

    assert response.status_code == 200
    raw = shown_token(response)
    assert raw.startswith("act_") and token_checksum_ok(raw)
    page = squash(response.content.decode())
    assert "PBX-Milan now holds 4 channels of Call Recording" in page
    assert "HTTPS (port 443)" in page
    assert held(server) == 4
    assert assigned(cast.recording) == 4
    token = ActivationToken.objects.get(server=server)
    assert token.token_hash == hash_secret(raw) != raw
    assert token.revoked_at is None and token.used_at is None
    assert token.expires_at > timezone.now() + timedelta(days=29)
    assert AuditEvent.objects.filter(action="token.minted", object_id=str(server.pk)).exists()
    assert AuditEvent.objects.filter(action="capacity.assigned", object_id=str(server.pk)).exists()
    # Shown once: the page afterwards tells that a token waits, not what it is.
    later = client.get(f"/servers/{server.pk}/").content.decode()
    assert raw not in later and not ANY_TOKEN.search(later)
    assert "Waiting for activation" in later


def test_an_htmx_assignment_returns_the_server_body_with_the_token(cast, server):
    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 2}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response.templates[0].name == "tokens/_server_body.html"
    assert "<html" not in response.content.decode()
    assert hash_secret(shown_token(response)) == ActivationToken.objects.get().token_hash
    assert held(server) == 2


def test_changing_the_capacity_later_mints_no_other_token(cast, server, minted):
    client = client_for(cast.alice_member)

    raised = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 7})
    assert raised.status_code == 200
    assert "activation-token" not in raised.content.decode()
    assert held(server) == assigned(cast.recording) == 7

    lowered = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1})
    assert lowered.status_code == 200
    assert held(server) == assigned(cast.recording) == 1

    freed = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 0})
    assert freed.status_code == 200
    assert not Assignment.objects.filter(server=server).exists()
    assert assigned(cast.recording) == 0
    token = ActivationToken.objects.get()
    assert token.token_hash == hash_secret(minted) and token.revoked_at is None


def test_more_than_available_shows_an_error_and_changes_nothing(cast, account, server, minted):
    other = Server.objects.create(account=account, name="PBX-Rome")
    services.assign_capacity(server=other, product=cast.recording, quantity=5, actor=SYSTEM)
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 6}
    )

    assert response.status_code == 409
    page = response.content.decode()
    error = re.search(r'<ul class="errorlist" id="err-CALL_RECORDING"[^>]*>(.*?)</ul>', page, re.S)
    assert error is not None
    assert "Only 1 more channels of Call Recording are available" in squash(error.group(1))
    assert re.search(r'id="qty-CALL_RECORDING"[^>]*aria-invalid="true"', page)
    assert "activation-token" not in page
    assert snapshot() == before
    assert held(server) == 4


@pytest.mark.parametrize("quantity", ["-1", "abc", "", "1.5", "99999999999"])
def test_an_invalid_quantity_is_400_beside_its_field_and_changes_nothing(cast, server, quantity):
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": quantity}
    )

    assert response.status_code == 400
    assert 'id="err-CALL_RECORDING"' in response.content.decode()
    assert snapshot() == before


def test_a_missing_quantity_is_400(cast, server):
    before = snapshot()

    response = client_for(cast.alice_member).post(f"/servers/{server.pk}/assign/CALL_RECORDING/")

    assert response.status_code == 400
    assert 'id="err-CALL_RECORDING"' in response.content.decode()
    assert snapshot() == before


def test_an_unknown_product_is_404(cast, server):
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/NO_SUCH_APP/", {"quantity": 1}
    )

    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_assign(cast, server, who):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1}
    )

    assert response.status_code == 403
    assert snapshot() == before


def test_another_tenant_may_not_assign(cast, server):
    before = snapshot()

    response = client_for(cast.bob_admin).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1}
    )

    assert response.status_code == 404
    assert snapshot() == before


def test_a_deactivated_server_takes_no_capacity(cast, server):
    services.deactivate_server(server=server, actor=SYSTEM)
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1}
    )

    assert response.status_code == 400  # validation_error's status (STATUS_FOR_CODE)
    errors = re.search(
        r'<ul class="errorlist" role="alert" id="capacity-errors">(.*?)</ul>',
        response.content.decode(),
        re.S,
    )
    assert errors is not None
    assert "This server is deactivated." in errors.group(1)
    assert snapshot() == before


def test_an_application_the_account_lacks_shows_an_error_and_changes_nothing(cast, server):
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_BILLING/", {"quantity": 1}
    )

    assert response.status_code == 409
    errors = re.search(r'id="capacity-errors">(.*?)</ul>', response.content.decode(), re.S)
    assert errors is not None
    assert "Only 0 more users of Call Billing are available" in errors.group(1)
    assert snapshot() == before


# --- Regenerate the token --------------------------------------------------------------------


def test_regenerate_shows_a_new_token_and_revokes_the_old_one(cast, server, minted):
    old = ActivationToken.objects.get()

    response = client_for(cast.alice_member).post(f"/servers/{server.pk}/token/")

    assert response.status_code == 200
    raw = shown_token(response)
    assert raw != minted and raw.startswith("act_") and token_checksum_ok(raw)
    old.refresh_from_db()
    assert old.revoked_at is not None
    new = ActivationToken.objects.exclude(pk=old.pk).get()
    assert new.token_hash == hash_secret(raw)
    assert new.revoked_at is None and new.used_at is None
    assert AuditEvent.objects.filter(action="token.regenerated").count() == 1
    assert held(server) == 4  # capacity is untouched


def test_an_active_server_gets_no_new_token(cast, fleet):
    _, rome = fleet
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{rome.pk}/token/", HTTP_HX_REQUEST="true")

    # Rendered in place (a stale tab sees why, and the server as it is now).
    assert response.status_code == 409
    assert not ActivationToken.objects.filter(server=rome).exists()
    page = response.content.decode()
    assert "tokens are only for servers not yet activated" in page
    assert "Active (online)" in page


@pytest.mark.parametrize(("who", "status"), [(w, 403) for w in READ_ONLY] + [("bob_admin", 404)])
def test_who_may_not_regenerate_revokes_nothing(cast, server, minted, who, status):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(f"/servers/{server.pk}/token/")

    assert response.status_code == status
    assert minted not in response.content.decode()
    assert snapshot() == before


# --- Rename ----------------------------------------------------------------------------------


def test_rename_changes_the_name(cast, server):
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{server.pk}/rename/", {"name": " PBX  Milano 2 "})

    assert response.status_code == 302
    assert response["Location"] == f"/servers/{server.pk}/"
    server.refresh_from_db()
    assert server.name == "PBX Milano 2"
    event = AuditEvent.objects.get(action="server.renamed")
    assert event.data == {"from": "PBX-Milan", "to": "PBX Milano 2"}
    assert "Renamed to “PBX Milano 2”" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}])
def test_an_invalid_name_is_refused_beside_the_field(cast, server, body):
    before = snapshot()
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{server.pk}/rename/", body)

    assert response.status_code == 400
    assert snapshot() == before
    page = response.content.decode()
    assert re.search(r'id="rename-name"[^>]*aria-invalid="true"', page)
    assert 'id="rename-name-errors"' in page
    assert "<details open>" in page


@pytest.mark.parametrize(("who", "status"), [(w, 403) for w in READ_ONLY] + [("bob_admin", 404)])
def test_who_may_not_rename_changes_nothing(cast, server, who, status):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(f"/servers/{server.pk}/rename/", {"name": "X"})

    assert response.status_code == status
    assert snapshot() == before


# --- Deactivate ------------------------------------------------------------------------------


def test_deactivate_asks_for_confirmation_and_get_changes_nothing(cast, server, minted):
    before = snapshot()

    response = client_for(cast.alice_member).get(f"/servers/{server.pk}/deactivate/")

    assert response.status_code == 200
    page = squash(response.content.decode())
    assert "Deactivate PBX-Milan?" in page
    assert "4 channels of Call Recording" in page
    assert snapshot() == before


def test_deactivate_frees_the_capacity_and_revokes_token_and_credential(cast, account, fleet):
    milan, rome = fleet
    credential = ServerCredential.objects.create(server=rome, credential_hash=hash_secret("c"))
    assert assigned(cast.recording) == 6
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{rome.pk}/deactivate/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/{account.pk}/servers/"
    rome.refresh_from_db()
    assert rome.state == Server.State.DEACTIVATED and rome.deactivated_at is not None
    assert not Assignment.objects.filter(server=rome).exists()
    assert assigned(cast.recording) == 4 and assigned(cast.console) == 0
    credential.refresh_from_db()
    assert credential.revoked_at is not None
    assert held(milan) == 4  # the other server keeps its share
    assert AuditEvent.objects.filter(action="server.deactivated", object_id=str(rome.pk)).exists()
    listing = client.get(response["Location"]).content.decode()
    assert listed_servers(listing) == ["PBX-Milan"]
    assert "is deactivated: its capacity is free to assign again" in listing


def test_deactivating_a_pending_server_revokes_its_token(cast, server, minted):
    response = client_for(cast.alice_member).post(f"/servers/{server.pk}/deactivate/")

    assert response.status_code == 302
    assert ActivationToken.objects.get().revoked_at is not None
    assert assigned(cast.recording) == 0
    page = client_for(cast.alice_member).get(f"/servers/{server.pk}/").content.decode()
    assert "/assign/" not in page


@pytest.mark.parametrize(("who", "status"), [(w, 403) for w in READ_ONLY] + [("bob_admin", 404)])
def test_who_may_not_deactivate_changes_nothing(cast, server, minted, who, status):
    before = snapshot()
    client = client_for(getattr(cast, who))

    assert client.get(f"/servers/{server.pk}/deactivate/").status_code == status
    assert client.post(f"/servers/{server.pk}/deactivate/").status_code == status
    assert snapshot() == before


# --- Bounded queries on a large account ------------------------------------------------------


def build_load(
    account: SmartAccount, *, tag: str, products: int, licenses_per_product: int, servers: int
) -> list[Server]:
    """Fill `account` with rows made in bulk: per product, 8 in 10 licenses active (others
    locked or expired), half perpetual; servers in every state but deactivated, each holding
    3 units on two active licenses, License.assigned kept equal to the Assignment rows."""
    now = timezone.now()
    Product.objects.bulk_create(
        Product(code=f"{tag}_{n:03d}", name=f"{tag} application {n:03d}", unit="users")
        for n in range(products)
    )
    catalog = list(Product.objects.filter(code__startswith=f"{tag}_").order_by("code"))
    licenses = []
    for product in catalog:
        for n in range(licenses_per_product):
            perpetual = n % 2 == 0
            licenses.append(
                License(
                    account=account,
                    product=product,
                    kind=License.Kind.PERPETUAL if perpetual else License.Kind.SUBSCRIPTION,
                    quantity=10,
                    state=(
                        License.State.ACTIVE
                        if n % 10 < 8
                        else License.State.LOCKED
                        if n % 10 == 8
                        else License.State.EXPIRED
                    ),
                    ends_at=None if perpetual else now + timedelta(days=365),
                    care_ends_at=now + timedelta(days=20 + 7 * n),
                    source=f"{tag}-PO-{n}",
                )
            )
    License.objects.bulk_create(licenses, batch_size=500)
    active = [lic for lic in licenses if lic.state == License.State.ACTIVE]
    states = [Server.State.PENDING, Server.State.ACTIVE, Server.State.OFFLINE, Server.State.STALE]
    fleet = [
        Server(
            account=account,
            name=f"{tag}-server-{n:04d}",
            state=states[n % len(states)],
            reported_version="12.1",
            reported_usage={catalog[n % len(catalog)].code: 2},
            last_sync_at=now,
        )
        for n in range(servers)
    ]
    Server.objects.bulk_create(fleet, batch_size=500)
    assignments = []
    for n, server in enumerate(fleet):
        for lic in (active[(2 * n) % len(active)], active[(2 * n + 1) % len(active)]):
            lic.assigned += 3
            assignments.append(Assignment(server=server, license=lic, quantity=3))
    Assignment.objects.bulk_create(assignments, batch_size=500)
    License.objects.bulk_update(active, ["assigned"], batch_size=500)
    ActivationToken.objects.bulk_create(
        ActivationToken(
            server=server,
            token_hash=hash_secret(f"{tag}-{server.pk}"),
            expires_at=now + timedelta(days=30),
        )
        for server in fleet
        if server.is_pending
    )
    return fleet


@pytest.fixture
def large_and_small(cast):
    """Carol's account at the size of the issue (50 applications, 2,000 licenses, 500 servers);
    Erin, another customer of Alice, with a handful of each. Alice serves 30 more customers."""
    carol = cast.carol_customer.smart_account
    large = build_load(carol, tag="BIG", products=50, licenses_per_product=40, servers=500)
    erin = CustomerFactory(name="Erin Ltd")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    small = build_load(
        erin.smart_account, tag="SMALL", products=2, licenses_per_product=4, servers=3
    )
    for n in range(30):
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=CustomerFactory(name=f"Z{n:02d}"))
    assert License.objects.filter(account=carol).count() == 2000
    assert Server.objects.filter(account=carol).count() == 500
    assert all(
        lic.assigned == sum(a.quantity for a in lic.assignments.all())
        for lic in License.objects.filter(account=carol).prefetch_related("assignments")
    )
    return {"large": (carol, large), "small": (erin.smart_account, small)}


def count_queries(client: Client, path: str) -> tuple[int, object]:
    client.get(path)  # warm up anything cached per process
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(queries), response


@pytest.mark.parametrize("page", ["servers", "server", "server_htmx"])
def test_server_pages_need_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries, page
):
    def path(size: str) -> str:
        account, fleet = large_and_small[size]
        if page == "servers":
            return f"/accounts/{account.pk}/servers/"
        return f"/servers/{fleet[0].pk}/"

    headers = {"HTTP_HX_REQUEST": "true"} if page == "server_htmx" else {}
    client = client_for(cast.alice_member)
    client.get(path("large"), **headers)

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(path("large"), **headers)

    assert response.status_code == 200
    body = response.content.decode()
    if page == "servers":
        assert len(listed_servers(body)) == 25
        assert "Page 1 of 20" in body
    else:
        assert body.count('name="quantity"') == 50
    large, _ = count_queries(client, path("large"))
    small, _ = count_queries(client, path("small"))
    assert large == small


def test_the_picker_needs_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries
):
    alice = client_for(cast.alice_member)
    alice.get("/customers/")

    with django_assert_max_num_queries(MAX_QUERIES):
        response = alice.get("/customers/")

    rows = picker_rows(response.content.decode())
    assert len(rows) == 25
    # 50 applications, 500 servers, 6 active licenses per application whose care ends soon.
    assert rows["Carol Corp"] == ["50", "500", "300"]
    large, _ = count_queries(alice, "/customers/")
    # Bob serves a single, empty customer: the same number of queries.
    small, _ = count_queries(client_for(cast.bob_admin), "/customers/")
    assert large == small
