"""The shared cast: a distributor serving Alice's reseller, Bob's competing reseller, their
customers, and users of every role. Tests go through the front door with these."""

import os
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from smartaccounts.models import Organization, Product, User
from smartaccounts.secrets import new_secret
from smartaccounts.services import API_KEY_PREFIX

from .factories import (
    ApiKeyFactory,
    CustomerFactory,
    OrganizationFactory,
    PartnerLinkFactory,
    ProductFactory,
    UserFactory,
)

# Every Hypothesis test runs the same examples on every run and machine (a fixed seed, no
# example database, no per-example deadline a loaded machine would trip); a test narrows its
# own max_examples. HYPOTHESIS_PROFILE=explore draws new examples, for a search by hand.
hypothesis_settings.register_profile("suite", derandomize=True, database=None, deadline=None)
hypothesis_settings.register_profile("explore", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (row locks between concurrent transactions); CI sets DATABASE_URL",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that run Celery workers on the broker (marked `redis`) share its queues: with
    pytest-xdist they all go to one worker process, one after the other."""
    for item in items:
        if item.get_closest_marker("redis"):
            item.add_marker(pytest.mark.xdist_group("broker"))


@dataclass
class Cast:
    vendor: Organization
    distributor: Organization
    other_distributor: Organization
    alice_reseller: Organization
    bob_reseller: Organization
    stray_reseller: Organization
    carol_customer: Organization
    dave_customer: Organization
    recording: Product
    console: Product
    analytics: Product
    billing: Product
    alice_admin: User
    alice_member: User
    alice_viewer: User
    bob_admin: User
    distributor_admin: User
    carol_admin: User
    carol_viewer: User
    vendor_staff: User


@pytest.fixture
def cast(db) -> Cast:
    vendor = OrganizationFactory(kind=Organization.Kind.VENDOR, name="Vendor")
    distributor = OrganizationFactory(
        kind=Organization.Kind.DISTRIBUTOR, name="Dist One", email="orders@dist.example"
    )
    other_distributor = OrganizationFactory(kind=Organization.Kind.DISTRIBUTOR, name="Dist Two")
    alice = OrganizationFactory(name="Alice Reseller", email="orders@alice.example")
    bob = OrganizationFactory(name="Bob Reseller", email="orders@bob.example")
    stray = OrganizationFactory(name="Stray Reseller", email="orders@stray.example")
    distributor.resellers.add(alice)
    other_distributor.resellers.add(stray)
    carol = CustomerFactory(name="Carol Corp", email="it@carol.example")
    dave = CustomerFactory(name="Dave Inc", email="it@dave.example")
    PartnerLinkFactory(reseller=alice, customer=carol, external_id="ALICE-CAROL")
    PartnerLinkFactory(reseller=bob, customer=dave, external_id="BOB-DAVE")
    return Cast(
        vendor=vendor,
        distributor=distributor,
        other_distributor=other_distributor,
        alice_reseller=alice,
        bob_reseller=bob,
        stray_reseller=stray,
        carol_customer=carol,
        dave_customer=dave,
        recording=ProductFactory(code="CALL_RECORDING", name="Call Recording", unit="channels"),
        console=ProductFactory(code="ATTENDANT_CONSOLE", name="Attendant Console", unit="seats"),
        analytics=ProductFactory(
            code="CALL_ANALYTICS", name="Call Analytics", allows_perpetual=False
        ),
        billing=ProductFactory(code="CALL_BILLING", name="Call Billing", allows_subscription=False),
        alice_admin=UserFactory(email="alice@alice.example", organization=alice),
        alice_member=UserFactory(
            email="member@alice.example", organization=alice, role=User.Role.MEMBER
        ),
        alice_viewer=UserFactory(
            email="viewer@alice.example", organization=alice, role=User.Role.VIEWER
        ),
        bob_admin=UserFactory(email="bob@bob.example", organization=bob),
        distributor_admin=UserFactory(email="dan@dist.example", organization=distributor),
        carol_admin=UserFactory(email="carol@carol.example", organization=carol),
        carol_viewer=UserFactory(
            email="viewer@carol.example", organization=carol, role=User.Role.VIEWER
        ),
        vendor_staff=UserFactory(
            email="staff@vendor.example", organization=vendor, is_staff=True, is_superuser=True
        ),
    )


def api_client_for(org: Organization) -> APIClient:
    """An API client authenticated with a fresh API key of `org` (a row made by the factory:
    the key is setup here, `create_api_key` is tested in tests/smartaccounts/test_api_keys.py)."""
    raw = new_secret(API_KEY_PREFIX)
    ApiKeyFactory(organization=org, raw=raw)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def alice_api(cast: Cast) -> APIClient:
    return api_client_for(cast.alice_reseller)


@pytest.fixture
def bob_api(cast: Cast) -> APIClient:
    return api_client_for(cast.bob_reseller)


@pytest.fixture
def distributor_api(cast: Cast) -> APIClient:
    return api_client_for(cast.distributor)


@pytest.fixture
def later():
    """A function giving an RFC 3339 time `days` from now."""

    def _later(days: int) -> str:
        return (timezone.now() + timedelta(days=days)).isoformat()

    return _later


@pytest.fixture(scope="session", autouse=True)
def vendor_root(tmp_path_factory) -> str:
    """The vendor's root key for this test run: the service endorses its signing keys with it,
    and the agent trusts it through APPSUITE_ROOT_KEY, as docs/agent.md does."""
    from django.conf import settings

    from tokens.trust import create_root_key

    path = tmp_path_factory.mktemp("vendor-root") / "root-key.pem"
    public = create_root_key(path)
    settings.LICENSE_ROOT_KEY_FILE = str(path)
    os.environ["APPSUITE_ROOT_KEY"] = public
    return public


@pytest.fixture(autouse=True)
def _empty_outbox_and_cache():
    mail.outbox = []
    cache.clear()  # failure counters and the like never leak from one test into another


@pytest.fixture(scope="session", autouse=True)
def _no_stray_connections_at_the_end(django_db_setup, django_db_blocker):
    """Live-server threads and worker processes may leave a connection behind; end them so
    the test database can be dropped cleanly."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
