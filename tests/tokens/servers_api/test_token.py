"""POST /api/v1/servers/{id}/token, and what no one else may do."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from smartaccounts.models import AuditEvent
from smartaccounts.secrets import hash_secret
from tokens.models import ActivationToken, Assignment, Server

from ...conftest import api_client_for
from ...orders.payloads import assert_problem
from .conftest import (
    MANAGERS,
    READ_ONLY,
    assignment_url,
    client_as,
    server_url,
    servers_url,
    token_url,
)

pytestmark = pytest.mark.django_db


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


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.UUID(int=1))])
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
