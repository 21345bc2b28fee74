"""GET/DELETE /api/v1/servers/{id}."""

import uuid

import pytest

from smartaccounts.models import AuditEvent, License
from tokens.models import ActivationToken, Assignment, Server

from ...conftest import api_client_for
from ...factories import LicenseFactory, ServerCredentialFactory, ServerFactory
from ...orders.payloads import assert_problem
from .conftest import (
    MANAGERS,
    READ_ONLY,
    READERS,
    assigned_by_license,
    assignment_url,
    client_as,
    hold,
    server_url,
    snapshot,
    token_url,
)

pytestmark = pytest.mark.django_db


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


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.UUID(int=1)), "1"])
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
