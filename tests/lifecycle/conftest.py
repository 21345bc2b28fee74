"""Lifecycle fixtures: a clock that stands still until a test moves it, and servers activated
and synced through the activation API as an AppSuite server would.

The few server fixtures are copied from tests/activation/conftest.py (a non-root conftest
cannot be shared through pytest_plugins)."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from rest_framework.test import APIClient

from smartaccounts.actors import Actor
from smartaccounts.models import License, SmartAccount
from tokens import services
from tokens.models import Server
from tokens.signing import _cache

from ..factories import LicenseFactory

START = datetime(2031, 3, 10, 6, 0, tzinfo=UTC)
ACTIVATE = "/api/v1/activation"
SYNC = "/api/v1/activation/sync"


def at(days: float = 0, **delta: float) -> datetime:
    """A moment `days` (and hours, minutes…) after START."""
    return START + timedelta(days=days, **delta)


@pytest.fixture(autouse=True)
def clock():
    """Time stands still at START (set up before any other fixture); `clock.move_to(at(3))`."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    # Each test's database starts without keys; never sign with one cached from another test.
    _cache.clear()
    yield
    _cache.clear()


@pytest.fixture
def system() -> Actor:
    return Actor.system("tests")


@pytest.fixture
def carol_account(cast) -> SmartAccount:
    return cast.carol_customer.smart_account


@pytest.fixture
def dave_account(cast) -> SmartAccount:
    return cast.dave_customer.smart_account


@pytest.fixture
def device() -> APIClient:
    return APIClient()


def subscription(account: SmartAccount, product, ends_at: datetime, **fields) -> License:
    """An active subscription whose care runs with its term."""
    fields.setdefault("quantity", 10)
    return LicenseFactory(
        account=account,
        product=product,
        kind=License.Kind.SUBSCRIPTION,
        ends_at=ends_at,
        care_ends_at=fields.pop("care_ends_at", ends_at),
        **fields,
    )


def activate(device: APIClient, token: str, fingerprint: str = "fp-1", **extra):
    return device.post(
        ACTIVATE,
        {"token": token, "fingerprint": fingerprint, "hostname": "pbx.local", "version": "W26"},
        format="json",
        **extra,
    )


def sync(device: APIClient, credential: str, fingerprint: str = "fp-1", usage=None, **extra):
    return device.post(
        SYNC,
        {"fingerprint": fingerprint, "version": "W26", "usage": usage or {}},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {credential}",
        **extra,
    )


def entitlements(response) -> dict[str, dict]:
    """The document's entitlements by license id (the signature is checked elsewhere)."""
    assert response.status_code == 200, response.content
    claims = jwt.decode(response.json()["license"], options={"verify_signature": False})
    return {item["license"]: item for item in claims["entitlements"]}


@pytest.fixture
def online_server(carol_account, system, device):
    """Create a server holding `quantity` of each license's product and activate it online.

    Returns (server, credential)."""

    def _online_server(*holdings: tuple[License, int], name: str = "pbx-1"):
        server = services.create_server(
            account=carol_account, name=name, purpose="production", actor=system
        )
        token = None
        for lic, quantity in holdings:
            result = services.assign_capacity(
                server=server, product=lic.product, quantity=quantity, actor=system
            )
            token = result.token.raw if result.token else token
        response = activate(device, token)
        assert response.status_code == 201, response.content
        return Server.objects.get(pk=server.pk), response.json()["credential"]

    return _online_server
