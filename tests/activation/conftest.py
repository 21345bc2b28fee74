from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from smartaccounts.actors import Actor
from tokens import services
from tokens.signing import _cache

from ..factories import LicenseFactory
from ..wsgi_app import WsgiClient


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    # Each test's database starts without keys; never sign with one cached from another test.
    _cache.clear()
    yield
    _cache.clear()


@pytest.fixture
def system():
    return Actor.system("tests")


@pytest.fixture
def carol_account(cast):
    return cast.carol_customer.smart_account


@pytest.fixture
def perpetual(cast, carol_account):
    return LicenseFactory(
        account=carol_account,
        product=cast.recording,
        kind="perpetual",
        quantity=50,
        care_ends_at=timezone.now() + timedelta(days=200),
    )


@pytest.fixture
def subscription(cast, carol_account):
    end = timezone.now() + timedelta(days=300)
    return LicenseFactory(
        account=carol_account,
        product=cast.console,
        kind="subscription",
        quantity=10,
        ends_at=end,
        care_ends_at=end,
    )


@pytest.fixture
def pending_server(carol_account, system):
    return services.create_server(
        account=carol_account, name="pbx-1", purpose="production", actor=system
    )


@pytest.fixture
def token_for(system):
    """Assign capacity to a server and return its freshly minted token."""

    def _token_for(server, product, quantity):
        result = services.assign_capacity(
            server=server, product=product, quantity=quantity, actor=system
        )
        assert result.token is not None
        return result.token.raw

    return _token_for


@pytest.fixture
def device() -> WsgiClient:
    """An AppSuite server: its requests go through the production WSGI callable (the lean
    handler and its middleware), as gunicorn serves them."""
    return WsgiClient()


@pytest.fixture
def activated(cast, perpetual, pending_server, token_for, device) -> dict[str, Any]:
    """A server activated online as `fp-1`, holding 20 channels of Call Recording: the
    activation's answer (credential, server id, document). A module needing other holdings
    defines its own."""
    token = token_for(pending_server, cast.recording, 20)
    response = device.post(
        "/api/v1/activation",
        {"token": token, "fingerprint": "fp-1", "hostname": "pbx-1.local", "version": "W26"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return dict(response.json())
