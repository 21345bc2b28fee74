"""Servers, capacity assignments and activation tokens through the API (S1, S2, S9, S10)."""

import pytest
from rest_framework.test import APIClient

from smartaccounts.actors import Actor
from smartaccounts.models import License
from tokens import services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential

from ...conftest import api_client_for
from ...factories import LicenseFactory, ServerFactory

# Who may do what on Carol's account. API keys act for an organization; sessions for a user.
MANAGERS = ["carol_customer", "alice_reseller", "carol_admin@session", "alice_member@session"]
READ_ONLY = ["alice_viewer@session", "carol_viewer@session", "distributor"]
READERS = MANAGERS + READ_ONLY


def client_as(cast, who: str) -> APIClient:
    """`org` gives an API-key client of that organization, `user@session` a logged-in one."""
    if who.endswith("@session"):
        client = APIClient()
        client.force_login(getattr(cast, who.removesuffix("@session")))
        return client
    return api_client_for(getattr(cast, who))


def servers_url(account_id: object) -> str:
    return f"/api/v1/accounts/{account_id}/servers"


def server_url(server_id: object) -> str:
    return f"/api/v1/servers/{server_id}"


def assignment_url(server_id: object, product: str = "CALL_RECORDING") -> str:
    return f"/api/v1/servers/{server_id}/assignments/{product}"


def token_url(server_id: object) -> str:
    return f"/api/v1/servers/{server_id}/token"


def snapshot() -> dict[str, set]:
    """Everything these endpoints may write, to compare before and after a refused call."""
    return {
        "servers": set(
            Server.objects.values_list(
                "pk", "account_id", "name", "purpose", "state", "fingerprint", "deactivated_at"
            )
        ),
        "licenses": set(License.objects.values_list("pk", "quantity", "assigned", "state")),
        "assignments": set(Assignment.objects.values_list("server_id", "license_id", "quantity")),
        "tokens": set(ActivationToken.objects.values_list("pk", "revoked_at", "used_at")),
        "credentials": set(ServerCredential.objects.values_list("pk", "revoked_at")),
    }


def assigned_by_license() -> dict[object, int]:
    return dict(License.objects.values_list("pk", "assigned"))


def held(server: Server) -> dict[object, int]:
    return dict(Assignment.objects.filter(server=server).values_list("license_id", "quantity"))


@pytest.fixture
def account(cast):
    return cast.carol_customer.smart_account


@pytest.fixture
def carol_api(cast) -> APIClient:
    return api_client_for(cast.carol_customer)


@pytest.fixture
def server(account) -> Server:
    return ServerFactory(account=account, name="PBX Milan")


@pytest.fixture
def recording(cast, account) -> License:
    """Ten channels of Call Recording, active."""
    return LicenseFactory(account=account, product=cast.recording, quantity=10)


@pytest.fixture
def dave_server(cast) -> Server:
    return ServerFactory(account=cast.dave_customer.smart_account, name="Dave PBX")


def hold(server: Server, product, quantity: int) -> None:
    services.assign_capacity(
        server=server, product=product, quantity=quantity, actor=Actor.system("tests")
    )


def _fill(account, products, servers: int) -> None:
    first = Server.objects.filter(account=account).count()
    for n in range(first, first + servers):
        server = ServerFactory(account=account, name=f"PBX {n:02}")
        for product in products:
            hold(server, product, 1)
