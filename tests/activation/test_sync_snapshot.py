"""The sync's one read (tokens.selectors.sync_snapshot) gives typed values by column name, the
same on PostgreSQL and SQLite: ids as the models' UUIDs in text, moments aware, usage a dict,
only the capacity on active licenses."""

from datetime import UTC

import pytest

from smartaccounts.secrets import hash_secret
from tokens.models import Server
from tokens.selectors import sync_snapshot

from .test_activation_api import sync

pytestmark = pytest.mark.django_db


def test_the_snapshot_reads_what_the_models_hold(activated, perpetual, pending_server, device):
    assert sync(device, activated["credential"], usage={"CALL_RECORDING": 3}).status_code == 200
    server = Server.objects.select_related("account").get(pk=pending_server.pk)

    snapshot = sync_snapshot(hash_secret(activated["credential"]))

    assert snapshot is not None
    assert (snapshot.server_id, snapshot.account_id) == (str(server.pk), str(server.account.pk))
    assert (snapshot.server_name, snapshot.account_name) == (server.name, server.account.name)
    assert (snapshot.state, snapshot.fingerprint, snapshot.reported_version) == (
        server.state,
        server.fingerprint,
        server.reported_version,
    )
    assert snapshot.reported_usage == {"CALL_RECORDING": 3} == server.reported_usage
    assert snapshot.overused is server.overused is False
    assert snapshot.revoked is False
    assert snapshot.last_sync_at == server.last_sync_at and snapshot.last_sync_at.tzinfo
    assert snapshot.first_sync_at == server.first_sync_at
    assert snapshot.clone_suspected_at is None
    [held] = snapshot.held
    assert (held.product, held.quantity, held.kind) == ("CALL_RECORDING", 20, "perpetual")
    assert held.license_id == str(perpetual.pk)
    assert held.ends_at is None
    assert held.care_ends_at == perpetual.care_ends_at
    assert held.care_ends_at.utcoffset() == UTC.utcoffset(None)


def test_capacity_on_a_license_no_longer_active_is_not_held(activated, perpetual):
    perpetual.state = "revoked"
    perpetual.save(update_fields=["state"])

    snapshot = sync_snapshot(hash_secret(activated["credential"]))

    assert snapshot is not None and snapshot.held == []


def test_an_unknown_credential_has_no_snapshot(db):
    assert sync_snapshot(hash_secret("srv_unknown")) is None
