"""A populated two-tenant world for the tenant matrix, the mass-assignment and the fuzzing tests.

Alice's reseller serves Carol, Bob's reseller serves Dave. Each customer has licenses, an order
placed by its reseller, a pending server holding capacity (with its activation token), an
activated server (with its credential) and a deactivated one; every organization has an API
key. Everything is made through the services, as the portal and the API would make it.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.models import OutboundEmail
from orders import intake
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import ApiKey, License, Organization, SmartAccount
from smartaccounts.services import create_api_key
from tokens import exchange
from tokens import services as token_services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential
from tokens.signing import _cache

from ..conftest import Cast
from ..factories import LicenseFactory


@dataclass
class Tenant:
    """One customer with everything the portal and the API can point at."""

    account: SmartAccount
    perpetual: License
    subscription: License
    order: Order
    order_license: License
    pending: Server
    pending_token: str
    active: Server
    active_fingerprint: str
    credential: str
    deactivated: Server


@dataclass
class World:
    cast: Cast
    carol: Tenant
    dave: Tenant
    # Raw API key of each organization, by the attribute name of the organization in the cast.
    api_keys: dict[str, str] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    # Each test's database starts without keys; never sign with one cached from another test.
    _cache.clear()
    yield
    _cache.clear()


def _order_for(reseller: Organization, customer: Organization, reference: str) -> Order:
    external_id = customer.reseller_links.get(reseller=reseller).external_id
    data = intake.OrderData(
        reference=reference,
        customer=intake.CustomerData(
            name=customer.name, email=customer.email, external_id=external_id
        ),
        lines=[
            intake.LineData(
                product="CALL_BILLING",
                quantity=7,
                kind="perpetual",
                care_ends_at=timezone.now() + timedelta(days=365),
            )
        ],
    )
    order, created = intake.place_order(placed_by=reseller, data=data, actor=Actor.system("tests"))
    assert created and order.account == customer.smart_account
    return order


def _tenant(cast: Cast, reseller: Organization, customer: Organization, name: str) -> Tenant:
    system = Actor.system("tests")
    account = customer.smart_account
    end = timezone.now() + timedelta(days=300)
    perpetual = LicenseFactory(account=account, product=cast.recording, quantity=50)
    subscription = LicenseFactory(
        account=account,
        product=cast.console,
        kind=License.Kind.SUBSCRIPTION,
        quantity=10,
        ends_at=end,
        care_ends_at=end,
    )
    order = _order_for(reseller, customer, f"PO-{name.upper()}-1")
    pending = token_services.create_server(
        account=account, name=f"{name}-pending", purpose="production", actor=system
    )
    minted = token_services.assign_capacity(
        server=pending, product=cast.recording, quantity=5, actor=system
    )
    active = token_services.create_server(
        account=account, name=f"{name}-active", purpose="test", actor=system
    )
    first = token_services.assign_capacity(
        server=active, product=cast.recording, quantity=3, actor=system
    )
    fingerprint = f"fp-{name}-active"
    activation = exchange.activate_server(
        token=first.token.raw, fingerprint=fingerprint, hostname=f"{name}.local", version="W26"
    )
    deactivated = token_services.create_server(
        account=account, name=f"{name}-gone", purpose="other", actor=system
    )
    deactivated = token_services.deactivate_server(server=deactivated, actor=system)
    pending.refresh_from_db()
    return Tenant(
        account=account,
        perpetual=perpetual,
        subscription=subscription,
        order=order,
        order_license=order.lines.get().license,
        pending=pending,
        pending_token=minted.token.raw,
        active=activation.server,
        active_fingerprint=fingerprint,
        credential=activation.credential,
        deactivated=deactivated,
    )


API_KEY_ORGS = (
    "distributor",
    "alice_reseller",
    "bob_reseller",
    "carol_customer",
    "dave_customer",
    "vendor",
)


@pytest.fixture
def world(cast: Cast) -> World:
    world = World(
        cast=cast,
        carol=_tenant(cast, cast.alice_reseller, cast.carol_customer, "carol"),
        dave=_tenant(cast, cast.bob_reseller, cast.dave_customer, "dave"),
    )
    for name in API_KEY_ORGS:
        _, raw = create_api_key(
            organization=getattr(cast, name), name=f"{name} key", actor=Actor.system("tests")
        )
        world.api_keys[name] = raw
    return world


def database_state() -> dict[str, Any]:
    """Every row a tenant could change through a front door, in a comparable form."""
    user_model = get_user_model()
    return {
        "orders": set(
            Order.objects.values_list("pk", "state", "unlocked_at", "unlock_secret_hash")
        ),
        "licenses": set(
            License.objects.values_list(
                "pk",
                "account_id",
                "product_id",
                "kind",
                "state",
                "quantity",
                "assigned",
                "ends_at",
                "auto_renew",
            )
        ),
        "servers": set(
            Server.objects.values_list(
                "pk", "account_id", "name", "purpose", "state", "fingerprint", "deactivated_at"
            )
        ),
        "assignments": set(Assignment.objects.values_list("server_id", "license_id", "quantity")),
        "tokens": set(
            ActivationToken.objects.values_list("pk", "server_id", "used_at", "revoked_at")
        ),
        "credentials": set(ServerCredential.objects.values_list("pk", "revoked_at")),
        "api_keys": set(ApiKey.objects.values_list("pk", "organization_id", "revoked_at")),
        "users": set(
            user_model.objects.values_list(
                "pk", "email", "organization_id", "role", "is_active", "is_staff", "is_superuser"
            )
        ),
        "organizations": set(Organization.objects.values_list("pk", "kind", "name")),
        "accounts": set(SmartAccount.objects.values_list("pk", "organization_id", "name")),
        "outbox": set(OutboundEmail.objects.values_list("pk", "kind", "object_id")),
    }


def assert_unchanged(before: dict[str, Any], after: dict[str, Any], what: str) -> None:
    changed = {table for table in before if before[table] != after[table]}
    assert not changed, f"{what} changed {sorted(changed)}"
