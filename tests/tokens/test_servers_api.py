"""Servers, capacity assignments and activation tokens through the API (S1, S2, S9, S10)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License
from smartaccounts.secrets import hash_secret
from tokens import services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential

from ..conftest import api_client_for
from ..factories import LicenseFactory, ServerCredentialFactory, ServerFactory
from ..orders.payloads import assert_problem

pytestmark = pytest.mark.django_db

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


# --- GET/POST /api/v1/accounts/{id}/servers ------------------------------------------------


@pytest.mark.parametrize("who", READERS)
def test_list_holds_the_accounts_servers_with_what_they_hold(
    cast, account, server, recording, dave_server, who
):
    hold(server, cast.recording, 4)
    other = ServerFactory(account=account, name="Backup", purpose="redundancy")

    response = client_as(cast, who).get(servers_url(account.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    by_id = {row["id"]: row for row in body["results"]}
    assert set(by_id) == {str(server.pk), str(other.pk)}  # not Dave's
    mine = by_id[str(server.pk)]
    assert mine["state"] == "pending"
    assert mine["account"] == {"id": str(account.pk), "name": account.name}
    assert [(a["product"], a["quantity"]) for a in mine["assignments"]] == [("CALL_RECORDING", 4)]
    assert by_id[str(other.pk)]["purpose"] == "redundancy"
    assert by_id[str(other.pk)]["assignments"] == []


def test_list_filters_by_state(cast, carol_api, account, server):
    gone = ServerFactory(account=account, name="Old", state=Server.State.DEACTIVATED)

    pending = carol_api.get(servers_url(account.pk), {"state": "pending"}).json()
    deactivated = carol_api.get(servers_url(account.pk), {"state": "deactivated"}).json()

    assert [s["id"] for s in pending["results"]] == [str(server.pk)]
    assert [s["id"] for s in deactivated["results"]] == [str(gone.pk)]


@pytest.mark.parametrize("who", MANAGERS)
def test_create_server_is_pending_and_audited(cast, account, who):
    response = client_as(cast, who).post(
        servers_url(account.pk), {"name": "  PBX   Rome ", "purpose": "test"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    created = Server.objects.get(pk=body["id"])
    assert created.account == account
    assert (created.name, created.purpose, created.state) == ("PBX Rome", "test", "pending")
    assert body["state"] == "pending" and body["name"] == "PBX Rome"
    assert body["assignments"] == []
    assert not ActivationToken.objects.filter(server=created).exists()  # only with capacity
    assert AuditEvent.objects.filter(action="server.created", object_id=str(created.pk)).exists()


def test_purpose_defaults_to_production(cast, carol_api, account):
    response = carol_api.post(servers_url(account.pk), {"name": "PBX"}, format="json")

    assert response.status_code == 201
    assert Server.objects.get(pk=response.json()["id"]).purpose == "production"


def test_another_tenants_account_is_404_for_list_and_create(cast, account, server):
    bob = api_client_for(cast.bob_reseller)
    before = snapshot()

    assert_problem(bob.get(servers_url(account.pk)), 404, "not_found")
    assert_problem(
        bob.post(servers_url(account.pk), {"name": "X"}, format="json"), 404, "not_found"
    )
    # Dave (Bob's customer) and Alice's other distributor's world see nothing of Carol either.
    dave = api_client_for(cast.dave_customer)
    assert_problem(dave.get(servers_url(account.pk)), 404, "not_found")
    stray = api_client_for(cast.other_distributor)
    assert_problem(stray.get(servers_url(account.pk)), 404, "not_found")
    assert snapshot() == before


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_create_servers(cast, account, who):
    before = snapshot()

    response = client_as(cast, who).post(servers_url(account.pk), {"name": "X"}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4()), "1"])
def test_unknown_account_is_404(carol_api, bad_id):
    assert_problem(carol_api.get(servers_url(bad_id)), 404, "not_found")
    assert_problem(
        carol_api.post(servers_url(bad_id), {"name": "X"}, format="json"), 404, "not_found"
    )
    assert not Server.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_servers_list_wrong_method_is_405(carol_api, account, server, method):
    response = getattr(carol_api, method)(servers_url(account.pk), {}, format="json")

    assert_problem(response, 405, "method_not_allowed")
    assert Server.objects.get().state == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "PBX", "purpose": "gaming"}, "purpose"),
        ({"name": ["PBX"]}, "name"),
    ],
)
def test_invalid_server_bodies_are_400(carol_api, account, body, field):
    response = carol_api.post(servers_url(account.pk), body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"]
    assert not Server.objects.exists()


def test_malformed_json_is_400(carol_api, account):
    response = carol_api.post(
        servers_url(account.pk), data="{not json", content_type="application/json"
    )

    assert_problem(response, 400, "validation_error")
    assert not Server.objects.exists()


def test_injected_fields_on_create_change_nothing(cast, carol_api, account):
    dave_account = cast.dave_customer.smart_account
    forged_id = uuid.uuid4()
    response = carol_api.post(
        servers_url(account.pk),
        {
            "id": str(forged_id),
            "name": "PBX",
            "state": "active",
            "account": str(dave_account.pk),
            "fingerprint": "forged-fp",
            "hostname": "evil.example",
            "activated_at": timezone.now().isoformat(),
            "clone_suspected_at": timezone.now().isoformat(),
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    created = Server.objects.get()
    assert created.pk != forged_id
    assert created.account == account
    assert created.state == "pending"
    assert created.fingerprint == "" and created.hostname == ""
    assert created.activated_at is None and created.clone_suspected_at is None
    assert not Server.objects.filter(account=dave_account).exists()


def _fill(account, products, servers: int) -> None:
    first = Server.objects.filter(account=account).count()
    for n in range(first, first + servers):
        server = ServerFactory(account=account, name=f"PBX {n:02}")
        for product in products:
            hold(server, product, 1)


def test_server_list_query_count_is_constant(
    cast, carol_api, account, django_assert_max_num_queries
):
    products = [cast.recording, cast.console]
    for product in products:
        # Two licenses each so that servers' holdings spread over several rows.
        LicenseFactory(account=account, product=product, quantity=20)
        LicenseFactory(
            account=account,
            product=product,
            quantity=20,
            kind="subscription",
            ends_at=timezone.now() + timedelta(days=300),
        )
    carol_api.get(servers_url(account.pk))  # the API key's last_used_at touch happens once

    _fill(account, products, 3)
    with django_assert_max_num_queries(5) as small:
        response = carol_api.get(servers_url(account.pk))
    assert response.json()["count"] == 3
    assert all(len(s["assignments"]) == 2 for s in response.json()["results"])

    _fill(account, products, 27)
    with django_assert_max_num_queries(5) as big:
        response = carol_api.get(servers_url(account.pk))
    assert response.json()["count"] == 30
    assert all(len(s["assignments"]) == 2 for s in response.json()["results"])
    assert len(big.captured_queries) == len(small.captured_queries)


# --- GET/DELETE /api/v1/servers/{id} ----------------------------------------------------------


@pytest.mark.parametrize("who", READERS)
def test_get_server_with_assignments(cast, server, recording, who):
    hold(server, cast.recording, 3)
    Server.objects.filter(pk=server.pk).update(reported_usage={"CALL_RECORDING": 2})

    response = client_as(cast, who).get(server_url(server.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(server.pk)
    assert body["state"] == "pending"
    assert body["usage"] == {"CALL_RECORDING": 2}
    assert body["assignments"] == [
        {
            "product": "CALL_RECORDING",
            "name": "Call Recording",
            "unit": "channels",
            "quantity": 3,
            "used": 2,
        }
    ]
    for field in ("last_sync_at", "version", "hostname", "created_at", "clone_suspected"):
        assert field in body


def test_another_tenants_server_is_404(cast, server, recording):
    hold(server, cast.recording, 3)
    ServerCredentialFactory(server=server, credential_hash="c" * 64)
    before = snapshot()

    for who in ("bob_reseller", "dave_customer", "other_distributor", "vendor"):
        client = api_client_for(getattr(cast, who))
        assert_problem(client.get(server_url(server.pk)), 404, "not_found")
        assert_problem(client.delete(server_url(server.pk)), 404, "not_found")
    bob_session = client_as(cast, "bob_admin@session")
    assert_problem(bob_session.delete(server_url(server.pk)), 404, "not_found")
    assert snapshot() == before


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_deactivate(cast, server, recording, who):
    hold(server, cast.recording, 3)
    before = snapshot()

    assert_problem(client_as(cast, who).delete(server_url(server.pk)), 403, "permission_denied")
    assert snapshot() == before
    assert Server.objects.get().state == "pending"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4()), "1"])
def test_unknown_server_is_404(carol_api, server, bad_id):
    assert_problem(carol_api.get(server_url(bad_id)), 404, "not_found")
    assert_problem(carol_api.delete(server_url(bad_id)), 404, "not_found")
    assert Server.objects.get().state == "pending"


@pytest.mark.parametrize("method", ["put", "patch", "post"])
def test_server_detail_wrong_method_is_405(carol_api, server, method):
    response = getattr(carol_api, method)(
        server_url(server.pk), {"name": "Renamed", "state": "active"}, format="json"
    )

    assert_problem(response, 405, "method_not_allowed")
    assert (Server.objects.get().name, Server.objects.get().state) == ("PBX Milan", "pending")


@pytest.mark.parametrize("who", MANAGERS)
def test_deactivate_frees_capacity_and_revokes_tokens_and_credentials(cast, server, recording, who):
    console = LicenseFactory(account=server.account, product=cast.console, quantity=5)
    hold(server, cast.recording, 4)  # mints a token
    hold(server, cast.console, 5)
    credential = ServerCredentialFactory(server=server, credential_hash="c" * 64)
    token = ActivationToken.objects.get(server=server)
    assert token.revoked_at is None

    response = client_as(cast, who).delete(server_url(server.pk))

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "deactivated"
    assert response.json()["assignments"] == []
    server.refresh_from_db()
    assert server.state == "deactivated" and server.deactivated_at is not None
    assert not Assignment.objects.filter(server=server).exists()
    assert assigned_by_license() == {recording.pk: 0, console.pk: 0}
    token.refresh_from_db()
    credential.refresh_from_db()
    assert token.revoked_at is not None
    assert credential.revoked_at is not None
    assert AuditEvent.objects.filter(action="server.deactivated").count() == 1


def test_deactivating_twice_is_harmless(cast, carol_api, server, recording):
    hold(server, cast.recording, 4)
    other = ServerFactory(account=server.account, name="Other")
    hold(other, cast.recording, 2)
    assert carol_api.delete(server_url(server.pk)).status_code == 200
    before = snapshot()

    again = carol_api.delete(server_url(server.pk))

    assert again.status_code == 200
    assert again.json()["state"] == "deactivated"
    assert snapshot() == before  # the other server's 2 stay assigned
    assert License.objects.get().assigned == 2
    assert AuditEvent.objects.filter(action="server.deactivated").count() == 1


def test_assigning_to_a_deactivated_server_is_refused(cast, carol_api, server, recording):
    carol_api.delete(server_url(server.pk))
    before = snapshot()

    response = carol_api.put(assignment_url(server.pk), {"quantity": 2}, format="json")

    assert response.status_code in (400, 409), response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert snapshot() == before
    assert License.objects.get().assigned == 0


def test_deactivated_server_cannot_get_a_token(carol_api, server):
    carol_api.delete(server_url(server.pk))

    assert_problem(carol_api.post(token_url(server.pk)), 409, "server_not_pending")
    assert not ActivationToken.objects.exists()


# --- PUT /api/v1/servers/{id}/assignments/{product} -----------------------------------------


@pytest.mark.parametrize("who", MANAGERS)
def test_first_assignment_of_a_pending_server_mints_a_token(cast, server, recording, who):
    response = client_as(cast, who).put(assignment_url(server.pk), {"quantity": 4}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["product"], body["quantity"], body["available"]) == ("CALL_RECORDING", 4, 6)
    assert body["token"].startswith("act_")
    assert body["token_expires_at"]
    assert body["server"]["assignments"][0]["quantity"] == 4
    token = ActivationToken.objects.get(server=server)
    assert token.token_hash == hash_secret(body["token"])
    assert token.status(timezone.now()) == "valid"
    assert held(server) == {recording.pk: 4}
    recording.refresh_from_db()
    assert recording.assigned == 4
    assert AuditEvent.objects.filter(action="capacity.assigned").count() == 1


def test_later_assignment_changes_do_not_mint_another_token(cast, carol_api, server, recording):
    LicenseFactory(account=server.account, product=cast.console, quantity=3)
    first = carol_api.put(assignment_url(server.pk), {"quantity": 4}, format="json").json()

    more = carol_api.put(assignment_url(server.pk), {"quantity": 7}, format="json")
    other = carol_api.put(
        assignment_url(server.pk, "ATTENDANT_CONSOLE"), {"quantity": 1}, format="json"
    )

    assert more.status_code == 200 and other.status_code == 200
    assert "token" not in more.json() and "token" not in other.json()
    assert more.json()["available"] == 3
    token = ActivationToken.objects.get()  # still the one
    assert token.token_hash == hash_secret(first["token"])
    assert token.revoked_at is None
    recording.refresh_from_db()
    assert recording.assigned == 7


def test_an_active_server_gets_no_token(cast, carol_api, server, recording):
    Server.objects.filter(pk=server.pk).update(state=Server.State.ACTIVE)

    response = carol_api.put(assignment_url(server.pk), {"quantity": 2}, format="json")

    assert response.status_code == 200
    assert "token" not in response.json()
    assert not ActivationToken.objects.exists()
    assert held(server) == {recording.pk: 2}


def test_more_than_available_is_409_and_changes_nothing(cast, carol_api, server, recording):
    other = ServerFactory(account=server.account, name="Other")
    hold(other, cast.recording, 7)
    hold(server, cast.recording, 1)
    before = snapshot()
    events = AuditEvent.objects.count()

    response = carol_api.put(assignment_url(server.pk), {"quantity": 5}, format="json")

    body = assert_problem(response, 409, "insufficient_capacity")
    assert body["available"] == 2
    assert snapshot() == before
    assert AuditEvent.objects.count() == events


def test_a_product_the_account_does_not_own_has_no_capacity(cast, carol_api, server):
    response = carol_api.put(
        assignment_url(server.pk, "CALL_BILLING"), {"quantity": 1}, format="json"
    )

    assert assert_problem(response, 409, "insufficient_capacity")["available"] == 0
    assert not Assignment.objects.exists()
    assert not ActivationToken.objects.exists()


def test_zero_frees_the_capacity(cast, carol_api, server, recording):
    carol_api.put(assignment_url(server.pk), {"quantity": 6}, format="json")

    response = carol_api.put(assignment_url(server.pk), {"quantity": 0}, format="json")

    assert response.status_code == 200
    assert (response.json()["quantity"], response.json()["available"]) == (0, 10)
    assert response.json()["server"]["assignments"] == []
    assert not Assignment.objects.exists()
    recording.refresh_from_db()
    assert recording.assigned == 0


def test_locked_and_expired_licenses_are_not_capacity(cast, carol_api, server, account):
    active = LicenseFactory(account=account, product=cast.recording, quantity=5)
    locked = LicenseFactory(
        account=account, product=cast.recording, quantity=50, state=License.State.LOCKED
    )
    expired = LicenseFactory(
        account=account, product=cast.recording, quantity=50, state=License.State.EXPIRED
    )

    before = snapshot()

    refused = carol_api.put(assignment_url(server.pk), {"quantity": 6}, format="json")

    assert assert_problem(refused, 409, "insufficient_capacity")["available"] == 5
    assert snapshot() == before
    assert assigned_by_license() == {active.pk: 0, locked.pk: 0, expired.pk: 0}


def test_exactly_the_active_capacity_fits(cast, carol_api, server, account):
    active = LicenseFactory(account=account, product=cast.recording, quantity=5)
    locked = LicenseFactory(
        account=account, product=cast.recording, quantity=50, state=License.State.LOCKED
    )
    other = ServerFactory(account=account, name="Other")
    hold(other, cast.recording, 2)

    fits = carol_api.put(assignment_url(server.pk), {"quantity": 3}, format="json")

    assert fits.status_code == 200, fits.content
    assert (fits.json()["quantity"], fits.json()["available"]) == (3, 0)
    assert assigned_by_license() == {active.pk: 5, locked.pk: 0}
    assert held(server) == {active.pk: 3}


def test_draws_perpetual_first_then_latest_care_end_and_releases_subscriptions_first(
    cast, carol_api, server, account
):
    now = timezone.now()
    subscription = LicenseFactory(
        account=account,
        product=cast.recording,
        kind=License.Kind.SUBSCRIPTION,
        quantity=4,
        ends_at=now + timedelta(days=900),
        care_ends_at=now + timedelta(days=900),  # the latest care, yet a subscription
    )
    perpetual_short_care = LicenseFactory(
        account=account, product=cast.recording, quantity=4, care_ends_at=now + timedelta(days=30)
    )
    perpetual_long_care = LicenseFactory(
        account=account, product=cast.recording, quantity=4, care_ends_at=now + timedelta(days=700)
    )

    def put(quantity: int) -> None:
        response = carol_api.put(assignment_url(server.pk), {"quantity": quantity}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["available"] == 12 - quantity

    put(3)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 3,
        perpetual_short_care.pk: 0,
        subscription.pk: 0,
    }
    put(6)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 4,
        perpetual_short_care.pk: 2,
        subscription.pk: 0,
    }
    put(10)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 4,
        perpetual_short_care.pk: 4,
        subscription.pk: 2,
    }
    # Lowering gives back the subscription first, then the perpetual whose care ends first.
    put(5)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 4,
        perpetual_short_care.pk: 1,
        subscription.pk: 0,
    }
    assert held(server) == {perpetual_long_care.pk: 4, perpetual_short_care.pk: 1}


def test_unknown_product_is_404(carol_api, server, recording):
    response = carol_api.put(
        assignment_url(server.pk, "NO_SUCH_APP"), {"quantity": 1}, format="json"
    )

    assert_problem(response, 404, "not_found")
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": -1},
        {"quantity": "three"},
        {"quantity": 1.5},
        {"quantity": None},
        {"quantity": [2]},
        {"quantity": 10_000_001},
        {},
    ],
)
def test_invalid_quantities_are_400(carol_api, server, recording, body):
    response = carol_api.put(assignment_url(server.pk), body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert "quantity" in problem["errors"]
    assert not Assignment.objects.exists()
    assert not ActivationToken.objects.exists()
    recording.refresh_from_db()
    assert recording.assigned == 0


def test_injected_fields_on_assignment_change_nothing(cast, carol_api, server, recording):
    response = carol_api.put(
        assignment_url(server.pk),
        {"quantity": 2, "assigned": 0, "license": str(recording.pk), "state": "active"},
        format="json",
    )

    assert response.status_code == 200
    recording.refresh_from_db()
    assert (recording.assigned, recording.quantity) == (2, 10)
    assert Server.objects.get().state == "pending"


def test_another_tenants_server_assignment_is_404(cast, server, recording):
    before = snapshot()

    for who in ("bob_reseller", "dave_customer", "other_distributor"):
        response = api_client_for(getattr(cast, who)).put(
            assignment_url(server.pk), {"quantity": 1}, format="json"
        )
        assert_problem(response, 404, "not_found")
    assert snapshot() == before


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_assign(cast, server, recording, who):
    before = snapshot()

    response = client_as(cast, who).put(assignment_url(server.pk), {"quantity": 1}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4())])
def test_assignment_on_unknown_server_is_404(carol_api, recording, bad_id):
    response = carol_api.put(assignment_url(bad_id), {"quantity": 1}, format="json")

    assert_problem(response, 404, "not_found")
    assert not Assignment.objects.exists()


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_assignment_wrong_method_is_405(carol_api, server, recording, method):
    response = getattr(carol_api, method)(assignment_url(server.pk), {"quantity": 1}, format="json")

    assert_problem(response, 405, "method_not_allowed")
    assert not Assignment.objects.exists()


# --- POST /api/v1/servers/{id}/token -------------------------------------------------------------


@pytest.mark.parametrize("who", MANAGERS)
def test_mint_token_for_a_pending_server(cast, server, who):
    response = client_as(cast, who).post(token_url(server.pk))

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    assert body["token"].startswith("act_")
    token = ActivationToken.objects.get()
    assert token.server == server
    assert token.token_hash == hash_secret(body["token"])
    assert token.expires_at.isoformat().replace("+00:00", "Z") == body["expires_at"]


def test_regenerating_revokes_the_previous_token(carol_api, server):
    first = carol_api.post(token_url(server.pk)).json()["token"]

    second = carol_api.post(token_url(server.pk))

    assert second.status_code == 201
    assert second.json()["token"] != first
    old = ActivationToken.objects.get(token_hash=hash_secret(first))
    new = ActivationToken.objects.get(token_hash=hash_secret(second.json()["token"]))
    now = timezone.now()
    assert old.revoked_at is not None and old.status(now) == "revoked"
    assert new.revoked_at is None and new.status(now) == "valid"
    assert AuditEvent.objects.filter(action="token.regenerated").count() == 1


@pytest.mark.parametrize("state", ["active", "offline", "stale", "deactivated"])
def test_token_for_a_non_pending_server_is_409(carol_api, server, state):
    Server.objects.filter(pk=server.pk).update(state=state)

    assert_problem(carol_api.post(token_url(server.pk)), 409, "server_not_pending")
    assert not ActivationToken.objects.exists()


def test_another_tenants_server_token_is_404(cast, server):
    for who in ("bob_reseller", "dave_customer", "other_distributor"):
        response = api_client_for(getattr(cast, who)).post(token_url(server.pk))
        assert_problem(response, 404, "not_found")
    assert not ActivationToken.objects.exists()


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_mint_tokens(cast, server, who):
    assert_problem(client_as(cast, who).post(token_url(server.pk)), 403, "permission_denied")
    assert not ActivationToken.objects.exists()


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4())])
def test_token_for_unknown_server_is_404(carol_api, server, bad_id):
    assert_problem(carol_api.post(token_url(bad_id)), 404, "not_found")
    assert not ActivationToken.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_token_wrong_method_is_405(carol_api, server, method):
    assert_problem(getattr(carol_api, method)(token_url(server.pk)), 405, "method_not_allowed")
    assert not ActivationToken.objects.exists()


def test_token_endpoint_ignores_injected_fields(carol_api, server):
    # The endpoint takes no body; fields trying to choose the secret or its lifetime do nothing.
    forged_expiry = (timezone.now() + timedelta(days=3650)).isoformat()
    response = carol_api.post(
        token_url(server.pk),
        {"token": "act_chosen", "expires_at": forged_expiry, "used_at": None},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["token"] != "act_chosen"
    token = ActivationToken.objects.get()
    assert token.token_hash != hash_secret("act_chosen")
    assert token.expires_at < timezone.now() + timedelta(days=365)


# --- Everyone else -----------------------------------------------------------------------------


def test_anonymous_callers_are_401_everywhere(account, server, recording):
    anonymous = APIClient()
    calls = [
        anonymous.get(servers_url(account.pk)),
        anonymous.post(servers_url(account.pk), {"name": "X"}, format="json"),
        anonymous.get(server_url(server.pk)),
        anonymous.delete(server_url(server.pk)),
        anonymous.put(assignment_url(server.pk), {"quantity": 1}, format="json"),
        anonymous.post(token_url(server.pk)),
    ]

    for response in calls:
        assert_problem(response, 401, "not_authenticated")
    assert Server.objects.count() == 1 and Server.objects.get().state == "pending"
    assert not Assignment.objects.exists() and not ActivationToken.objects.exists()
