"""S10: no mass assignment. Every write endpoint, sent its legitimate body plus fields it must
not take (`state`, a license's `quantity`, `assigned`, `organization`, `account`, `is_staff`,
`role`, `fingerprint`, `placed_by`, `kind`...), changes none of them: the rows are compared
before and after, and the rows it creates carry the values the service decides. The API's write
bodies refuse such members outright (400 `validation_error` naming each, at any depth, nothing
written) and do their job once sent without them; a portal form ignores them.
"""

from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order
from smartaccounts.models import ApiKey, License, Organization, User
from tokens.models import ActivationToken, Assignment, Server

from ..orders.payloads import assert_problem
from .conftest import World, database_state

pytestmark = pytest.mark.django_db

FAR_FUTURE = "2099-01-01T00:00:00Z"


def injected(world: World) -> dict[str, Any]:
    """Fields no caller may set, with values that would hand it another tenant's objects or
    powers if they were taken."""
    cast, dave = world.cast, world.dave
    return {
        "state": "active",
        "quantity": 999_999,
        "assigned": 999_999,
        "organization": str(cast.bob_reseller.pk),
        "account": str(dave.account.pk),
        "account_id": str(dave.account.pk),
        "is_staff": True,
        "is_superuser": True,
        "role": "admin",
        "fingerprint": "fp-injected",
        "placed_by": str(cast.bob_reseller.pk),
        "reseller_id": str(cast.bob_reseller.pk),
        "kind": "distributor",
        "id": str(dave.pending.pk),
        "server": str(dave.pending.pk),
        "server_id": str(dave.active.pk),
        "license": str(dave.perpetual.pk),
        "expires_at": FAR_FUTURE,
        "used_at": FAR_FUTURE,
        "revoked_at": FAR_FUTURE,
        "created_by": str(cast.bob_admin.pk),
        "key_hash": "0" * 64,
        "prefix": "clp_injected",
    }


def form_injected(world: World) -> dict[str, str]:
    """The same, as a browser form would send them."""
    return {
        name: ("on" if value is True else str(value)) for name, value in injected(world).items()
    }


def key_client(world: World, org: str = "alice_reseller") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.api_keys[org]}")
    return client


def session_client(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def assert_rows(
    before: dict[str, set], after: dict[str, set], *, grown: tuple = (), changed: tuple = ()
) -> None:
    """Tables not named are identical; `grown` tables only gained rows (none was modified);
    `changed` tables are checked by the test itself."""
    for table in before:
        if table in changed:
            continue
        if table in grown:
            assert before[table] <= after[table], f"existing {table} rows were modified"
        else:
            assert before[table] == after[table], f"{table} changed"


def new_rows(before: dict[str, set], after: dict[str, set], table: str) -> set:
    return after[table] - before[table]


def assert_refused(response, unknown: set[str]) -> None:
    """400 validation_error naming every member in `unknown` (dotted paths), and nothing was
    written (the caller compares the rows)."""
    body = assert_problem(response, 400, "validation_error")
    assert unknown <= body["errors"].keys(), body["errors"]
    assert all(body["errors"][name] == ["Unknown field."] for name in unknown)


def without(body: dict[str, Any], bad: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in bad or k in keep}


def test_order_intake_takes_no_state_owner_or_account(world, later):
    cast, carol = world.cast, world.carol
    bad = injected(world)
    body = {
        **bad,
        "reference": "PO-MASS-1",
        "customer": {
            **bad,
            "name": "Carol Corp",
            "email": "it@carol.example",
            "external_id": "ALICE-CAROL",
        },
        "lines": [
            {
                **{k: v for k, v in bad.items() if k not in ("quantity", "kind")},
                "product": "CALL_RECORDING",
                "quantity": 4,
                "kind": "perpetual",
                "care_ends_at": later(365),
            }
        ],
    }
    before = database_state()

    refused = key_client(world).post("/api/v1/orders", body, format="json")

    assert_refused(
        refused,
        {"state", "organization", "placed_by", "customer.account", "customer.is_staff"}
        | {"lines.0.state", "lines.0.license", "lines.0.server"},
    )
    assert database_state() == before
    line_fields = ("product", "quantity", "kind", "care_ends_at")
    body = {
        "reference": body["reference"],
        "customer": without(body["customer"], bad, ("name", "email", "external_id")),
        "lines": [without(body["lines"][0], bad, line_fields)],
    }
    response = key_client(world).post("/api/v1/orders", body, format="json")

    assert response.status_code == 201, response.content
    after = database_state()
    assert_rows(before, after, grown=("orders", "licenses", "outbox"))
    order = Order.objects.get(pk=response.json()["id"])
    assert order.state == Order.State.LOCKED and order.unlocked_at is None
    assert order.placed_by == cast.alice_reseller and order.reseller == cast.alice_reseller
    assert order.customer == cast.carol_customer and order.account == carol.account
    (lic,) = License.objects.filter(order_lines__order=order)
    assert (lic.account, lic.kind, lic.state) == (carol.account, "perpetual", "locked")
    assert (lic.quantity, lic.assigned) == (4, 0)
    assert Organization.objects.get(pk=cast.carol_customer.pk).kind == "customer"
    assert len(new_rows(before, after, "orders")) == 1
    assert len(new_rows(before, after, "licenses")) == 1


def test_assignment_takes_only_the_quantity(world):
    carol = world.carol
    server, lic = carol.pending, carol.perpetual
    before = database_state()
    path = f"/api/v1/servers/{server.pk}/assignments/CALL_RECORDING"

    refused = key_client(world).put(path, {**injected(world), "quantity": 2}, format="json")

    assert_refused(refused, set(injected(world)) - {"quantity"})
    assert database_state() == before
    response = key_client(world).put(path, {"quantity": 2}, format="json")

    assert response.status_code == 200, response.content
    after = database_state()
    assert_rows(before, after, changed=("licenses", "assignments"))
    assert Assignment.objects.get(server=server).quantity == 2
    # Only the drawn license's `assigned` moved, and it still adds up.
    changed = {row[0] for row in before["licenses"] ^ after["licenses"]}
    assert changed == {lic.pk}
    lic.refresh_from_db()
    held = sum(Assignment.objects.filter(license=lic).values_list("quantity", flat=True))
    assert (lic.quantity, lic.assigned, lic.state, lic.kind) == (50, held, "active", "perpetual")
    assert {row for row in before["assignments"] if row[0] != server.pk} <= after["assignments"]
    server.refresh_from_db()
    assert (server.state, server.fingerprint, server.account_id) == (
        "pending",
        "",
        carol.account.pk,
    )


def test_server_creation_takes_only_name_and_purpose(world):
    carol = world.carol
    before = database_state()
    path = f"/api/v1/accounts/{carol.account.pk}/servers"

    refused = key_client(world).post(
        path, {**injected(world), "name": "pbx-new", "purpose": "test"}, format="json"
    )

    assert_refused(refused, set(injected(world)))
    assert database_state() == before
    response = key_client(world).post(path, {"name": "pbx-new", "purpose": "test"}, format="json")

    assert response.status_code == 201, response.content
    after = database_state()
    assert_rows(before, after, grown=("servers",))
    server = Server.objects.get(pk=response.json()["id"])
    assert (server.name, server.purpose) == ("pbx-new", "test")
    assert (server.state, server.fingerprint, server.account_id) == (
        "pending",
        "",
        carol.account.pk,
    )
    assert server.pk != world.dave.pending.pk


def test_token_minting_takes_no_server_or_expiry(world):
    carol = world.carol
    before = database_state()

    response = key_client(world).post(
        f"/api/v1/servers/{carol.pending.pk}/token", injected(world), format="json"
    )

    assert response.status_code == 201, response.content
    after = database_state()
    assert_rows(before, after, changed=("tokens",))
    fresh = ActivationToken.objects.get(server=carol.pending, revoked_at__isnull=True)
    assert fresh.used_at is None
    assert fresh.expires_at <= timezone.now() + settings.ACTIVATION_TOKEN_TTL
    # The old token of this server was revoked; no other server's token moved.
    others = {row for row in before["tokens"] if row[1] != carol.pending.pk}
    assert others <= after["tokens"]
    carol.pending.refresh_from_db()
    assert (carol.pending.state, carol.pending.fingerprint) == ("pending", "")


def test_offline_activation_takes_only_the_request_file(world):
    carol = world.carol
    bad = injected(world)
    body = {
        **bad,
        "token": carol.pending_token,
        "fingerprint": "fp-offline",
        "hostname": "pbx.offline",
        "version": "W26",
        "nonce": "nonce-1",
        "mode": "online",
        "exp": FAR_FUTURE,
    }
    before = database_state()
    path = f"/api/v1/servers/{carol.pending.pk}/offline-activation"

    refused = key_client(world).post(path, body, format="json")

    assert_refused(refused, set(bad) - {"fingerprint"} | {"mode", "exp"})
    assert database_state() == before
    body = without(body, {**bad, "mode": 0, "exp": 0}, ("fingerprint",))
    response = key_client(world).post(path, body, format="json")

    assert response.status_code == 201, response.content
    after = database_state()
    assert_rows(before, after, changed=("servers", "tokens"))
    server = Server.objects.get(pk=carol.pending.pk)
    assert (server.state, server.fingerprint) == ("offline", "fp-offline")
    assert server.account_id == carol.account.pk
    assert {row for row in before["servers"] if row[0] != server.pk} <= after["servers"]


def test_activation_binds_only_the_tokens_server(world):
    carol = world.carol
    body = {
        **injected(world),
        "state": "offline",
        "server_id": str(carol.active.pk),
        "token": carol.pending_token,
        "fingerprint": "fp-activated",
        "hostname": "pbx.local",
        "version": "W26",
    }
    before = database_state()

    refused = APIClient().post("/api/v1/activation", body, format="json")

    assert_refused(refused, set(injected(world)) - {"fingerprint"})
    assert database_state() == before
    body = without(body, injected(world), ("fingerprint",))
    response = APIClient().post("/api/v1/activation", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["server_id"] == str(carol.pending.pk)
    after = database_state()
    assert_rows(before, after, changed=("servers", "tokens", "credentials"))
    server = Server.objects.get(pk=carol.pending.pk)
    assert (server.state, server.fingerprint) == ("active", "fp-activated")
    assert server.account_id == carol.account.pk
    assert {row for row in before["servers"] if row[0] != server.pk} <= after["servers"]


def test_sync_takes_no_state_or_capacity(world):
    carol = world.carol
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {carol.credential}")
    body = {
        **injected(world),
        "state": "deactivated",
        "fingerprint": carol.active_fingerprint,
        "version": "W27",
        "usage": {"CALL_RECORDING": 2},
    }
    before = database_state()

    refused = client.post("/api/v1/activation/sync", body, format="json")

    assert_refused(refused, set(injected(world)) - {"fingerprint"})
    assert database_state() == before
    body = without(body, injected(world), ("fingerprint",))
    response = client.post("/api/v1/activation/sync", body, format="json")

    assert response.status_code == 200, response.content
    assert_rows(before, database_state(), changed=("servers",))
    server = Server.objects.get(pk=carol.active.pk)
    assert (server.state, server.fingerprint) == ("active", carol.active_fingerprint)


def test_team_invite_takes_no_staff_flag_or_other_organization(world):
    cast = world.cast
    before = database_state()

    response = session_client(cast.alice_admin).post(
        "/team/",
        {
            **form_injected(world),
            "email": "new@alice.example",
            "full_name": "New",
            "role": "member",
        },
    )

    assert response.status_code == 302, response.content
    after = database_state()
    assert_rows(before, after, grown=("users",), changed=("outbox",))
    user = User.objects.get(email="new@alice.example")
    assert (user.organization, user.role) == (cast.alice_reseller, "member")
    assert not user.is_staff and not user.is_superuser
    assert len(new_rows(before, after, "users")) == 1


def test_portal_server_creation_takes_only_name_and_purpose(world):
    carol = world.carol
    before = database_state()

    response = session_client(world.cast.alice_admin).post(
        f"/accounts/{carol.account.pk}/servers/",
        {**form_injected(world), "name": "pbx-form", "purpose": "redundancy"},
    )

    assert response.status_code == 302, response.content
    assert_rows(before, database_state(), grown=("servers",))
    server = Server.objects.get(name="pbx-form")
    assert (server.purpose, server.state, server.fingerprint) == ("redundancy", "pending", "")
    assert server.account_id == carol.account.pk


def test_portal_rename_takes_only_the_name(world):
    active = world.carol.active
    before = database_state()

    response = session_client(world.cast.alice_admin).post(
        f"/servers/{active.pk}/rename/",
        {**form_injected(world), "name": "pbx-renamed", "purpose": "other"},
    )

    assert response.status_code == 302, response.content
    after = database_state()
    assert_rows(before, after, changed=("servers",))
    server = Server.objects.get(pk=active.pk)
    assert server.name == "pbx-renamed"
    assert (server.purpose, server.state) == (active.purpose, active.state)
    assert (server.fingerprint, server.account_id) == (active.fingerprint, active.account_id)
    assert {row for row in before["servers"] if row[0] != active.pk} <= after["servers"]


def test_api_key_creation_takes_no_organization_or_author(world):
    cast = world.cast
    before = database_state()

    response = session_client(cast.alice_admin).post(
        "/api-keys/", {**form_injected(world), "name": "ERP production"}
    )

    assert response.status_code == 200, response.content
    after = database_state()
    assert_rows(before, after, grown=("api_keys",))
    key = ApiKey.objects.get(name="ERP production")
    assert key.organization == cast.alice_reseller and key.created_by == cast.alice_admin
    assert key.revoked_at is None and key.prefix != "clp_injected" and key.key_hash != "0" * 64
    assert len(new_rows(before, after, "api_keys")) == 1
