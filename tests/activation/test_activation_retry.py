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
from tokens.models import Server, ServerCredential

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
