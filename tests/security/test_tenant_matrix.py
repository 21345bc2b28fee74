"""S9: tenants are isolated on every URL of the project.

The URL patterns are enumerated from the resolver, so a URL added later is covered without
touching this file (and a path parameter nobody knows how to fill fails loudly). For every
pattern: anonymous callers are sent to the login page (portal) or get 401 (API). For every
pattern carrying an id, every role — each cast user by session, each organization's API key on
the API — calls it with another tenant's objects, an unknown id and a malformed id, with every
method: the answer to a foreign id is exactly the answer to an id of nothing (404, or the
403/405 that the role or method gets before any object is looked up), and nothing in the
database changed. The list pages and endpoints hold only the caller's rows.
"""

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from smartaccounts.models import ApiKey, License

from ..factories import LicenseFactory
from .conftest import Tenant, World, assert_unchanged, database_state

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Route:
    route: str  # as Django joins it, e.g. "api/v1/servers/<str:server_id>/token"
    params: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    def fill(self, values: dict[str, str]) -> str:
        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], self.route)


def walk(patterns: list[Any], prefix: str = "") -> Iterator[Route]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield Route(route, tuple(re.findall(r"<(?:\w+:)?(\w+)>", route)))


# Patterns left out of the matrix, each with its reason (matched as prefixes).
SKIPPED = {
    "admin/": "the back office: vendor staff only, tested in tests/test_admin.py",
    "static/": "static files, served by WhiteNoise, no tenant data",
    "media/": "no uploaded media is served",
    "healthz": "the load balancer's probe: one query, no tenant data",
    "readyz": "the readiness probe: names its checks, no tenant data",
    "internal/": "operators' metrics, 404 to the public (tests/test_metrics.py)",
    "api/v1/schema/": "the public API description, no tenant data",
    "api/v1/docs/": "the public API browser, no tenant data",
    "login/": "the login page itself (S15 tests in test_hardening.py)",
    "logout/": "ends a session, touches no tenant data",
    "password-reset/": "password reset, for whoever holds the mailbox (Django's token)",
    "invitation/": "capability link for one invited user (Django's signed token)",
    "unlock/": "capability link for one order (S8: tests/orders/unlock_page/)",
}
# API endpoints AppSuite servers call: no id, their own secrets instead of an API key.
DEVICE_ROUTES = {"api/v1/keys", "api/v1/activation", "api/v1/activation/sync"}
DEVICE_BODIES = {
    "api/v1/activation": {"token": "x" * 40, "fingerprint": "fp-anonymous"},  # unknown token
    "api/v1/activation/sync": {"fingerprint": "fp-anonymous"},  # and no credential
}

ALL_ROUTES = list(walk(get_resolver().url_patterns))
COVERED = [r for r in ALL_ROUTES if not any(r.route.startswith(s) for s in SKIPPED)]
WITH_IDS = [r for r in COVERED if r.params]

# What the walk finds today, outside the admin: raise these when URLs are added.
EXPECTED_PATTERNS = 49
EXPECTED_COVERED = 38
EXPECTED_WITH_IDS = 26

ID_PARAMS = {"account_id", "server_id", "order_id", "license_id", "user_id", "key_id"}
OTHER_PARAMS = {"product"}  # a product code: products are the vendor's catalogue, not a tenant's

# Session users and the tenant whose objects are foreign to them.
SESSION_ROLES = {
    "alice_admin": "dave",
    "alice_member": "dave",
    "alice_viewer": "dave",
    "bob_admin": "carol",
    "distributor_admin": "dave",
    "carol_admin": "dave",
    "carol_viewer": "dave",
    "vendor_staff": "carol",
}
# Organizations calling with their API key, and the tenant foreign to them.
KEY_ROLES = {
    "alice_reseller": "dave",
    "bob_reseller": "carol",
    "distributor": "dave",
    "carol_customer": "dave",
    "dave_customer": "carol",
    "vendor": "carol",
}

NOTHING = str(uuid.UUID(int=0xBEEF))
MALFORMED = "not-an-id"
PORTAL_METHODS = ("get", "post")
API_METHODS = ("get", "post", "put", "delete")
# A body that each write would accept: if a lookup ever stopped scoping, the write would land
# and the database comparison would show it.
FORM_BODY = {
    "quantity": "1",
    "name": "renamed",
    "purpose": "test",
    "role": "admin",
    "auto_renew": "on",
}
JSON_BODY = {"quantity": 1, "name": "renamed", "purpose": "test"}


def test_the_walk_finds_every_url_pattern():
    outside_admin = [r for r in ALL_ROUTES if not r.route.startswith("admin/")]
    assert len(outside_admin) >= EXPECTED_PATTERNS
    assert len(COVERED) >= EXPECTED_COVERED
    assert len(WITH_IDS) >= EXPECTED_WITH_IDS
    # Every parameter is one this matrix knows how to fill with another tenant's object.
    unknown = {p for r in COVERED for p in r.params} - ID_PARAMS - OTHER_PARAMS
    assert not unknown, f"teach the tenant matrix to fill {unknown}"


def foreign_user_id(world: World, org: object) -> str:
    for user in (world.cast.bob_admin, world.cast.alice_admin):
        if user.organization != org:
            return str(user.pk)
    raise AssertionError("no user of another organization")


def foreign_key_id(org: object) -> str:
    return str(ApiKey.objects.exclude(organization=org).order_by("name").first().pk)


def fills(world: World, tenant: Tenant, org: object) -> list[dict[str, str]]:
    """Parameter values naming another tenant's objects, then nothing, then garbage."""
    people = {"user_id": foreign_user_id(world, org), "key_id": foreign_key_id(org)}
    by_server = [
        {"server_id": str(tenant.pending.pk), "license_id": str(tenant.subscription.pk)},
        {"server_id": str(tenant.active.pk), "license_id": str(tenant.perpetual.pk)},
    ]
    common = {"account_id": str(tenant.account.pk), "order_id": str(tenant.order.pk)}
    foreign = [{**common, **people, **server, "product": "CALL_RECORDING"} for server in by_server]
    nothing = dict.fromkeys(ID_PARAMS, NOTHING) | {"product": "CALL_RECORDING"}
    malformed = dict.fromkeys(ID_PARAMS, MALFORMED) | {"product": "CALL_RECORDING"}
    return [*foreign, nothing, malformed]


def own_fill(world: World) -> dict[str, str]:
    """Alice's reseller's own objects (it serves Carol)."""
    carol = world.carol
    return {
        "account_id": str(carol.account.pk),
        "server_id": str(carol.pending.pk),
        "order_id": str(carol.order.pk),
        "license_id": str(carol.subscription.pk),
        "user_id": str(world.cast.alice_member.pk),
        "key_id": str(ApiKey.objects.get(organization=world.cast.alice_reseller).pk),
        "product": "CALL_RECORDING",
    }


def session_client(user: object) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def call(client: APIClient, route: Route, method: str, url: str) -> Any:
    if route.is_api:
        body = JSON_BODY if method in ("post", "put") else None
        return getattr(client, method)(url, body, format="json")
    return getattr(client, method)(url, FORM_BODY if method == "post" else None)


def roles(world: World, route: Route) -> Iterator[tuple[str, APIClient, str, object]]:
    """(label, client, foreign tenant, organization) for every role that can call `route`."""
    for name, foreign in SESSION_ROLES.items():
        user = getattr(world.cast, name)
        yield f"{name} (session)", session_client(user), foreign, user.organization
    if route.is_api:
        for name, foreign in KEY_ROLES.items():
            org = getattr(world.cast, name)
            yield f"{name} (API key)", key_client(world.api_keys[name]), foreign, org


@pytest.mark.parametrize("route", COVERED, ids=lambda r: r.route)
def test_anonymous_is_sent_to_login_or_refused(route, world):
    client = APIClient()
    url = route.fill(own_fill(world))
    assert resolve(url).route == route.route
    before = database_state()

    for method in PORTAL_METHODS:
        if route.route == "api/v1/keys" and method == "get":
            # The public JWK set: anyone verifying a license document may read it.
            assert client.get(url).status_code == 200
            continue
        if route.route in DEVICE_BODIES and method == "post":
            # A well-formed request without a valid token or credential.
            response = client.post(url, DEVICE_BODIES[route.route], format="json")
        else:
            response = call(client, route, method, url)
        where = f"anonymous {method.upper()} {url}"
        if route.is_api:
            if route.route in DEVICE_ROUTES and response.status_code == 405:
                continue  # a method the device endpoint does not have
            assert response.status_code == 401, f"{where}: {response.status_code}"
            assert response["Content-Type"].startswith("application/problem+json"), where
            assert response.json()["status"] == 401, where
        else:
            assert response.status_code == 302, f"{where}: {response.status_code}"
            assert response["Location"].startswith("/login/?next="), where

    assert_unchanged(before, database_state(), f"anonymous calls to {url}")


@pytest.mark.parametrize("route", WITH_IDS, ids=lambda r: r.route)
def test_another_tenants_ids_are_not_found_and_change_nothing(route, world):
    methods = API_METHODS if route.is_api else PORTAL_METHODS
    mails = len(mail.outbox)
    checked = 0

    for label, client, foreign, org in roles(world, route):
        variants = fills(world, getattr(world, foreign), org)
        urls = list(dict.fromkeys(route.fill(values) for values in variants))
        nothing_url = route.fill(variants[-2])
        before = database_state()
        for method in methods:
            nothing = call(client, route, method, nothing_url)
            assert nothing.status_code in (404, 403, 405), (
                f"{label} {method.upper()} {nothing_url}: {nothing.status_code}"
            )
            for url in urls:
                assert resolve(url).route == route.route
                response = call(client, route, method, url)
                where = f"{label} {method.upper()} {url}"
                # A foreign id is answered exactly like an id of nothing: 404, or the role's
                # or method's refusal that comes before any lookup.
                assert response.status_code == nothing.status_code, (
                    f"{where}: {response.status_code}, an unknown id gets {nothing.status_code}"
                )
                if route.is_api and response.status_code == 404:
                    assert response.json() == nothing.json(), where
                checked += 1
        assert_unchanged(before, database_state(), f"{label} on {route.route}")
    assert len(mail.outbox) == mails, "a refused call sent e-mail"

    # The same URL with the caller's own objects is found: the ids above were well filled.
    owner = (
        key_client(world.api_keys["alice_reseller"])
        if route.is_api
        else session_client(world.cast.alice_admin)
    )
    url = route.fill(own_fill(world))
    statuses = [call(owner, route, method, url).status_code for method in methods]
    assert any(status not in (404, 405) for status in statuses), f"own {url}: {statuses}"
    assert checked > 0


def ids_in(response: Any) -> set[str]:
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("who", "tenants"),
    [
        ("alice_reseller", ["carol"]),
        ("bob_reseller", ["dave"]),
        ("distributor", ["carol"]),
        ("carol_customer", ["carol"]),
        ("dave_customer", ["dave"]),
        ("vendor", []),
    ],
)
def test_api_lists_hold_only_the_callers_rows(who, tenants, world):
    client = key_client(world.api_keys[who])
    mine = [getattr(world, name) for name in tenants]
    partner = who in ("alice_reseller", "bob_reseller")

    accounts = client.get("/api/v1/accounts")
    assert accounts.status_code == 200
    assert ids_in(accounts) == {str(t.account.pk) for t in mine}

    orders = client.get("/api/v1/orders")
    assert orders.status_code == 200
    # A reseller sees the orders it placed; a distributor those it placed (none here).
    assert ids_in(orders) == ({str(t.order.pk) for t in mine} if partner else set())

    for tenant in mine:
        account = tenant.account
        licenses = client.get(f"/api/v1/accounts/{account.pk}/licenses")
        assert licenses.status_code == 200
        listed = {lic["id"] for row in licenses.json()["results"] for lic in row["licenses"]}
        expected = set(
            map(str, License.objects.filter(account=account).values_list("pk", flat=True))
        )
        assert listed == expected

        servers = client.get(f"/api/v1/accounts/{account.pk}/servers")
        assert servers.status_code == 200
        assert ids_in(servers) == {
            str(s.pk) for s in (tenant.pending, tenant.active, tenant.deactivated)
        }
        assert {row["account"]["id"] for row in servers.json()["results"]} == {str(account.pk)}


def csv_rows(response: Any) -> list[dict[str, str]]:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(content.decode())))


@pytest.mark.parametrize(
    ("who", "mine", "theirs"),
    [("alice_admin", "carol", "dave"), ("bob_admin", "dave", "carol")],
)
def test_portal_lists_hold_only_the_callers_rows(who, mine, theirs, world):
    soon = timezone.now() + timedelta(days=20)
    expiring = {
        name: LicenseFactory(
            account=getattr(world, name).account,
            product=world.cast.analytics,
            kind=License.Kind.SUBSCRIPTION,
            ends_at=soon,
            care_ends_at=soon,
        )
        for name in ("carol", "dave")
    }
    client = session_client(getattr(world.cast, who))
    own, other = getattr(world, mine), getattr(world, theirs)

    picker = client.get("/customers/")
    assert picker.status_code == 200
    assert own.account.name in picker.content.decode()
    assert other.account.name not in picker.content.decode()

    orders = client.get("/orders/")
    assert orders.status_code == 200
    assert own.order.reference in orders.content.decode()
    assert other.order.reference not in orders.content.decode()

    renewals = client.get("/renewals/")
    assert renewals.status_code == 200
    assert own.order.reference in renewals.content.decode()  # its locked order
    assert other.order.reference not in renewals.content.decode()
    exported = csv_rows(client.get("/renewals/", {"format": "csv"}))
    assert {row["license_id"] for row in exported} == {str(expiring[mine].pk)}
    assert {row["customer"] for row in exported} == {own.account.name}

    team = client.get("/team/").content.decode()
    api_keys = client.get("/api-keys/").content.decode()
    other_admin = world.cast.bob_admin if who == "alice_admin" else world.cast.alice_admin
    assert getattr(world.cast, who).email in team and other_admin.email not in team
    own_key, other_key = (
        ("alice_reseller key", "bob_reseller key")
        if who == "alice_admin"
        else ("bob_reseller key", "alice_reseller key")
    )
    assert own_key in api_keys and other_key not in api_keys
