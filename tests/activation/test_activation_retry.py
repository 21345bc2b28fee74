"""A lost 201: the machine that used a token may present it again, shortly and before its first
sync, and gets the same server with a fresh credential. Anyone else, later, or after a sync
gets 409 token_used."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from lifecycle.history import Names, action_label, describe
from smartaccounts.models import AuditEvent
from tokens import services
from tokens.models import ActivationToken, Server, ServerCredential
from tokens.secrets import new_activation_token

from ..concurrency import run_together
from ..conftest import requires_postgres
from ..orders.payloads import assert_problem
from .test_activation_api import activate, sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(cast, perpetual, pending_server, token_for):
    return token_for(pending_server, cast.recording, 5)


def live_credentials(server: Server) -> int:
    return ServerCredential.objects.filter(server=server, revoked_at__isnull=True).count()


def test_the_same_machine_retrying_gets_the_same_server_and_a_fresh_credential(
    token, pending_server, device
):
    first = activate(device, token)
    assert first.status_code == 201

    again = activate(device, token)

    assert again.status_code == 201, again.content
    assert again.json()["server_id"] == first.json()["server_id"] == str(pending_server.pk)
    assert again.json()["credential"] != first.json()["credential"]
    assert Server.objects.count() == 1
    assert ServerCredential.objects.filter(server=pending_server).count() == 2
    assert live_credentials(pending_server) == 1
    # The credential of the lost answer no longer works; the new one does.
    assert_problem(sync(device, first.json()["credential"]), 401, "credential_revoked")
    assert sync(device, again.json()["credential"]).status_code == 200
    event = AuditEvent.objects.get(action="server.activation_repeated")
    assert event.object_id == str(pending_server.pk)
    assert action_label(event.action) == "Activation repeated"
    assert "activated again" in describe(event, Names.for_events([event]))


def test_another_machine_with_the_used_token_is_refused(token, pending_server, device):
    first = activate(device, token)
    assert first.status_code == 201

    assert_problem(activate(device, token, fingerprint="fp-other"), 409, "token_used")

    assert live_credentials(pending_server) == 1
    assert sync(device, first.json()["credential"]).status_code == 200
    assert not AuditEvent.objects.filter(action="server.activation_repeated").exists()


def test_after_the_window_the_token_is_used(token, pending_server, device, settings):
    settings.ACTIVATION_RETRY_MINUTES = 15
    first = activate(device, token)
    assert first.status_code == 201

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert_problem(activate(device, token), 409, "token_used")

    assert live_credentials(pending_server) == 1


def test_after_the_first_sync_the_token_is_used(token, pending_server, device):
    first = activate(device, token)
    assert sync(device, first.json()["credential"]).status_code == 200

    assert_problem(activate(device, token), 409, "token_used")

    assert live_credentials(pending_server) == 1
    assert sync(device, first.json()["credential"]).status_code == 200


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_retries_leave_one_server_and_one_live_credential(token, pending_server):
    statuses = run_together(10, lambda n: activate(APIClient(), token).status_code)

    assert statuses == [201] * 10
    assert Server.objects.count() == 1
    assert ServerCredential.objects.filter(server=pending_server).count() == 10
    assert live_credentials(pending_server) == 1
    assert AuditEvent.objects.filter(action="server.activation_repeated").count() == 9


def test_a_storm_of_used_or_expired_tokens_locks_no_address_out(
    cast, carol_account, perpetual, token, pending_server, device, settings, system
):
    """Only a token that is not one is a failed guess: a used token (409) or an expired one
    (410) is a real token, and a valid token from that address still activates."""
    settings.FAILED_ATTEMPTS_LIMIT = 3
    assert activate(device, token).status_code == 201
    expired_server = services.create_server(
        account=carol_account, name="pbx-old", purpose="production", actor=system
    )
    expired = services.assign_capacity(
        server=expired_server, product=cast.recording, quantity=1, actor=system
    ).token.raw
    ActivationToken.objects.filter(server=expired_server).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    for _ in range(10):
        assert_problem(activate(device, token, fingerprint="fp-other"), 409, "token_used")
        assert_problem(activate(device, expired), 410, "token_expired")

    fresh = services.create_server(
        account=carol_account, name="pbx-2", purpose="production", actor=system
    )
    good = services.assign_capacity(
        server=fresh, product=cast.recording, quantity=1, actor=system
    ).token.raw
    assert activate(device, good, fingerprint="fp-2").status_code == 201
    # Unknown tokens still count.
    for _ in range(3):
        assert_problem(activate(device, new_activation_token()), 401, "token_invalid")
    assert_problem(activate(device, good, fingerprint="fp-2"), 429, "rate_limited")
