"""Portal pages for servers: the customer picker, an account's servers, a server page that
assigns capacity and shows its activation token once, regenerate, rename and deactivate
(STYLE 12, S9), and a bounded number of queries on a large account."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, Product, SmartAccount
from tokens import services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential

from ...factories import (
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ServerFactory,
)
from ...load import LARGE, build_load

SYSTEM = Actor.system("tests")
TOKEN_BOX = re.compile(r'<input id="activation-token"[^>]*\bvalue="([^"]*)"')
# What any page of one server may not show: the secret, once its single showing is over.
ANY_TOKEN = re.compile(r"act_[a-z2-7]{39}")
# Users who may look at Carol's account but not change it, and users of another tenant.
READ_ONLY = ["alice_viewer", "carol_viewer", "distributor_admin"]
OUTSIDERS = ["bob_admin"]
MAX_QUERIES = 20


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
        if len(cells) in (4, 5):  # a distributor's list has a Reseller column after the name
            name = squash(re.search(r"<strong>(.*?)</strong>", cells[0], re.S).group(1))
            rows[name] = [squash(cell) for cell in cells[-3:]]
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
    return ServerFactory(account=account, name="PBX-Milan", purpose="production")


@pytest.fixture
def minted(cast, server) -> str:
    """The server holds 4 channels; returns the token the portal showed for it."""
    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 4}
    )
    assert response.status_code == 200
    return shown_token(response)


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
    ServerFactory(account=carol, name="one")
    ServerFactory(account=carol, name="two", state=Server.State.ACTIVE)
    ServerFactory(account=carol, name="gone", state=Server.State.DEACTIVATED)
    erin = CustomerFactory(name="Erin Ltd")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    LicenseFactory(account=cast.dave_customer.smart_account, product=cast.recording)
    return carol


@pytest.fixture
def fleet(cast, account, pool):
    """Two servers in use holding capacity, one deactivated; one of Bob's customer."""
    milan = ServerFactory(account=account, name="PBX-Milan")
    rome = ServerFactory(
        account=account,
        name="PBX-Rome",
        state=Server.State.ACTIVE,
        reported_version="12.1.4",
        reported_usage={"CALL_RECORDING": 3},
        last_sync_at=timezone.now(),
    )
    ServerFactory(account=account, name="Old-Box", state=Server.State.DEACTIVATED)
    ServerFactory(account=cast.dave_customer.smart_account, name="Dave-Box")
    services.assign_capacity(server=milan, product=cast.recording, quantity=4, actor=SYSTEM)
    services.assign_capacity(server=rome, product=cast.recording, quantity=2, actor=SYSTEM)
    services.assign_capacity(server=rome, product=cast.console, quantity=1, actor=SYSTEM)
    return milan, rome


@pytest.fixture
def large_and_small(cast):
    """Carol's account, large in every dimension (LARGE: 50 applications, 250 licenses, 30
    servers); Erin, another customer of Alice, with a handful of each. Alice serves 30 more
    customers. Equal query counts on the two prove the bound as well as the issue's size did."""
    carol = cast.carol_customer.smart_account
    large = build_load(carol, tag="BIG", **LARGE)
    erin = CustomerFactory(name="Erin Ltd")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    small = build_load(
        erin.smart_account, tag="SMALL", products=2, licenses_per_product=4, servers=3
    )
    for n in range(30):
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=CustomerFactory(name=f"Z{n:02d}"))
    assert License.objects.filter(account=carol).count() == 250
    assert Server.objects.filter(account=carol).count() == 30
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
