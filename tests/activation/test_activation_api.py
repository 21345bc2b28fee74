from datetime import timedelta

import jwt
import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from smartaccounts.models import AuditEvent
from tokens import services
from tokens.models import ActivationToken, Server, ServerCredential
from tokens.secrets import new_activation_token

from ..concurrency import run_together
from ..conftest import requires_postgres
from ..orders.payloads import assert_problem

pytestmark = pytest.mark.django_db

ACTIVATE = "/api/v1/activation"
SYNC = "/api/v1/activation/sync"


def published(device):
    response = device.get("/api/v1/keys")
    assert response.status_code == 200
    return {k["kid"]: k for k in response.json()["keys"]}


def verify(document, device, fingerprint="fp-1"):
    """Verify with the published JWK, as any holder of the public key would."""
    header = jwt.get_unverified_header(document)
    assert header["alg"] == "EdDSA" and header["typ"] == "license+jwt"
    key = jwt.PyJWK(published(device)[header["kid"]])
    claims = jwt.decode(document, key.key, algorithms=["EdDSA"])
    assert claims["fingerprint"] == fingerprint
    return claims


def activate(device, token, fingerprint="fp-1"):
    return device.post(
        ACTIVATE,
        {"token": token, "fingerprint": fingerprint, "hostname": "pbx-1.local", "version": "W26"},
        format="json",
    )


def sync(device, credential, fingerprint="fp-1", etag=None, usage=None, version="W26"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {credential}"}
    if etag:
        headers["HTTP_IF_NONE_MATCH"] = etag
    return device.post(
        SYNC,
        {"fingerprint": fingerprint, "version": version, "usage": usage or {}},
        format="json",
        **headers,
    )


@pytest.fixture
def activated(cast, perpetual, subscription, pending_server, token_for, device, system):
    token = token_for(pending_server, cast.recording, 20)
    services.assign_capacity(server=pending_server, product=cast.console, quantity=4, actor=system)
    response = activate(device, token)
    assert response.status_code == 201, response.content
    return response.json()


def test_activation_binds_the_server_and_returns_a_signed_document(
    cast, activated, pending_server, device
):
    claims = verify(activated["license"], device)

    assert activated["server_id"] == str(pending_server.pk)
    assert claims["sub"] == str(pending_server.pk) and claims["mode"] == "online"
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600
    assert claims["refresh_after"] - claims["iat"] == 12 * 3600
    assert claims["account"]["name"] == "Carol Corp"
    assert {(e["product"], e["quantity"], e["kind"]) for e in claims["entitlements"]} == {
        ("CALL_RECORDING", 20, "perpetual"),
        ("ATTENDANT_CONSOLE", 4, "subscription"),
    }
    assert all(e["care_status"] == "active" for e in claims["entitlements"])
    assert claims["services"]  # online with active care

    server = Server.objects.get(pk=pending_server.pk)
    assert server.state == "active" and server.fingerprint == "fp-1"
    assert server.hostname == "pbx-1.local" and server.reported_version == "W26"
    credential = ServerCredential.objects.get(server=server)
    assert activated["credential"] not in credential.credential_hash
    assert ActivationToken.objects.get(server=server).used_at is not None
    assert AuditEvent.objects.filter(action="server.activated", object_id=str(server.pk)).exists()


def test_token_errors(cast, perpetual, pending_server, token_for, device):
    token = token_for(pending_server, cast.recording, 5)

    unknown = new_activation_token()
    body = assert_problem(activate(device, unknown), 401, "token_invalid")
    assert body["reason"] == "unknown"
    mistyped = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    assert assert_problem(activate(device, mistyped), 401, "token_invalid")["reason"] == "checksum"

    assert activate(device, token).status_code == 201
    assert_problem(activate(device, token, fingerprint="fp-2"), 409, "token_used")
    assert ServerCredential.objects.count() == 1


def test_an_expired_token_creates_nothing(cast, perpetual, pending_server, token_for, device):
    token = token_for(pending_server, cast.recording, 5)

    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert_problem(activate(device, token), 410, "token_expired")

    assert Server.objects.get(pk=pending_server.pk).state == "pending"
    assert not ServerCredential.objects.exists()


def test_a_regenerated_token_replaces_the_old_one(
    cast, perpetual, pending_server, token_for, device, system
):
    old = token_for(pending_server, cast.recording, 5)
    new = services.mint_token(server=pending_server, actor=system).raw

    body = assert_problem(activate(device, old), 401, "token_invalid")
    assert body["reason"] == "revoked"
    assert body["detail"].startswith("This activation token was replaced by a newer one.")
    assert activate(device, new).status_code == 201


def test_a_deactivated_servers_token_says_the_server_was_deactivated_and_when(
    cast, perpetual, pending_server, token_for, device, system
):
    token = token_for(pending_server, cast.recording, 5)
    services.deactivate_server(server=pending_server, actor=system)
    deactivated_at = Server.objects.get(pk=pending_server.pk).deactivated_at

    body = assert_problem(activate(device, token), 401, "token_invalid")

    assert body["reason"] == "revoked"
    assert body["detail"].startswith(
        f"This server was deactivated in the portal on {deactivated_at:%Y-%m-%d %H:%M} UTC, so "
        "its activation token no longer works."
    )
    assert "replaced" not in body["detail"]
    assert not ServerCredential.objects.exists()


def test_sync_returns_the_document_with_an_etag_and_304_when_nothing_changed(
    cast, activated, device, django_assert_max_num_queries
):
    first = sync(device, activated["credential"])
    assert first.status_code == 200
    etag = first["ETag"]
    verify(first.json()["license"], device)

    with django_assert_max_num_queries(3):
        again = sync(device, activated["credential"], etag=etag)
    assert again.status_code == 304 and again["ETag"] == etag

    # A later sync in the same refresh period: a new signature, but the same content: 304.
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        assert sync(device, activated["credential"], etag=etag).status_code == 304


def test_a_change_in_capacity_changes_the_etag_and_reaches_the_next_sync(
    cast, activated, pending_server, device, system
):
    etag = sync(device, activated["credential"])["ETag"]
    services.assign_capacity(
        server=pending_server, product=cast.recording, quantity=30, actor=system
    )

    response = sync(device, activated["credential"], etag=etag)

    assert response.status_code == 200 and response["ETag"] != etag
    claims = verify(response.json()["license"], device)
    recording = [e for e in claims["entitlements"] if e["product"] == "CALL_RECORDING"]
    assert sum(e["quantity"] for e in recording) == 30


def test_steady_state_syncs_write_nothing(
    cast, activated, pending_server, device, django_assert_num_queries, settings
):
    sync(device, activated["credential"], usage={"CALL_RECORDING": 3})
    before = Server.objects.get(pk=pending_server.pk).last_sync_at
    sync(device, activated["credential"], usage={"CALL_RECORDING": 3})  # warm the key cache

    # The same usage and version a minute later: one read, no write.
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=1)),
        django_assert_num_queries(1),
    ):
        response = sync(device, activated["credential"], usage={"CALL_RECORDING": 3})
    assert response.status_code == 200
    assert Server.objects.get(pk=pending_server.pk).last_sync_at == before

    # Once SYNC_RECORD_INTERVAL has passed, last-seen is refreshed.
    later = timezone.now() + settings.SYNC_RECORD_INTERVAL + timedelta(minutes=1)
    with time_machine.travel(later):
        sync(device, activated["credential"], usage={"CALL_RECORDING": 3})
    server = Server.objects.get(pk=pending_server.pk)
    assert server.last_sync_at > before
    assert server.reported_usage == {"CALL_RECORDING": 3}


def test_a_changed_usage_reaches_the_portal_on_the_next_sync(
    cast, activated, pending_server, device
):
    sync(device, activated["credential"], usage={"CALL_RECORDING": 3})
    before = Server.objects.get(pk=pending_server.pk).last_sync_at

    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        response = sync(device, activated["credential"], usage={"CALL_RECORDING": 80})
    assert response.status_code == 200
    server = Server.objects.get(pk=pending_server.pk)
    assert server.reported_usage == {"CALL_RECORDING": 80}
    assert server.last_sync_at > before

    # Also when the answer is "not modified", and when a product stops being reported.
    etag = response["ETag"]
    with time_machine.travel(timezone.now() + timedelta(seconds=40)):
        again = sync(device, activated["credential"], etag=etag, usage={})
    assert again.status_code == 304
    assert Server.objects.get(pk=pending_server.pk).reported_usage == {}


def test_a_changed_version_is_stored_on_the_next_sync(cast, activated, pending_server, device):
    sync(device, activated["credential"], version="W26")

    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        sync(device, activated["credential"], version="Spring'27")

    assert Server.objects.get(pk=pending_server.pk).reported_version == "Spring'27"


def test_sync_query_count_does_not_grow_with_entitlements(
    cast, activated, pending_server, device, django_assert_max_num_queries, system
):
    from ..factories import LicenseFactory, ProductFactory

    for n in range(15):
        product = ProductFactory(code=f"EXTRA_{n}")
        LicenseFactory(account=pending_server.account, product=product, quantity=2)
        services.assign_capacity(server=pending_server, product=product, quantity=2, actor=system)
    sync(device, activated["credential"])  # warm the key cache

    with django_assert_max_num_queries(3):
        response = sync(device, activated["credential"])
    assert len(verify(response.json()["license"], device)["entitlements"]) == 17


def test_another_fingerprint_is_refused_audited_and_flagged(activated, pending_server, device):
    response = sync(device, activated["credential"], fingerprint="fp-clone")

    assert_problem(response, 409, "fingerprint_mismatch")
    server = Server.objects.get(pk=pending_server.pk)
    assert server.clone_suspected_at is not None
    assert (
        AuditEvent.objects.filter(
            action="server.fingerprint_mismatch", object_id=str(server.pk)
        ).count()
        == 1
    )
    # The genuine server keeps working.
    assert sync(device, activated["credential"]).status_code == 200


def test_deactivation_revokes_the_credential(activated, pending_server, device, system):
    services.deactivate_server(server=pending_server, actor=system)

    assert_problem(sync(device, activated["credential"]), 401, "credential_revoked")
    assert_problem(sync(device, "srv_nonsense"), 401, "not_authenticated")
    assert_problem(device.post(SYNC, {"fingerprint": "x"}, format="json"), 401, "not_authenticated")


def test_expired_licenses_leave_the_document(cast, activated, subscription, device):
    with time_machine.travel(subscription.ends_at + timedelta(hours=1)):
        claims = verify(sync(device, activated["credential"]).json()["license"], device)
    assert [e["product"] for e in claims["entitlements"]] == ["CALL_RECORDING"]


def test_failed_attempts_are_rate_limited_per_address(
    cast, perpetual, pending_server, token_for, settings, device
):
    settings.FAILED_ATTEMPTS_LIMIT = 3
    good = token_for(pending_server, cast.recording, 5)
    for _ in range(3):
        assert activate(device, new_activation_token()).status_code == 401

    limited = activate(device, good)
    body = assert_problem(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) > 0 and body["retry_after"] > 0

    other_address = APIClient(REMOTE_ADDR="10.9.9.9")
    assert activate(other_address, good).status_code == 201


def test_many_good_activations_from_one_address_are_never_slowed(
    cast, carol_account, settings, device, system
):
    from ..factories import LicenseFactory

    settings.FAILED_ATTEMPTS_LIMIT = 3
    LicenseFactory(account=carol_account, product=cast.recording, quantity=100)
    for n in range(10):
        server = services.create_server(
            account=carol_account, name=f"s{n}", purpose="production", actor=system
        )
        token = services.assign_capacity(
            server=server, product=cast.recording, quantity=1, actor=system
        ).token.raw
        assert activate(device, token, fingerprint=f"fp-{n}").status_code == 201


def test_keys_are_published_without_auth_and_rotation_keeps_old_documents_valid(activated, device):
    """S18, S22: a rotated key is published at once but signs only after the /keys cache
    lifetime, so a verifier holding the previous /keys answer never meets an unknown kid."""
    import time_machine
    from django.conf import settings

    from tokens.signing import _cache, create_signing_key

    old_kid = jwt.get_unverified_header(activated["license"])["kid"]
    cached_keys = published(device)  # what a verifier behind a cache holds
    new_key = create_signing_key()

    kids = published(device)
    assert {old_kid, new_key.kid} <= set(kids)
    verify(activated["license"], device)  # signed by the previous key: still verifies
    # Within the cache lifetime the previous key still signs: a cached /keys verifies it.
    during = sync(device, activated["credential"], usage={"CALL_RECORDING": 1}).json()["license"]
    assert jwt.get_unverified_header(during)["kid"] == old_kid in cached_keys

    later = timezone.now() + settings.KEYS_MAX_AGE + timedelta(minutes=2)
    with time_machine.travel(later, tick=False):
        _cache.clear()
        fresh = sync(device, activated["credential"], usage={"CALL_RECORDING": 2}).json()
    assert jwt.get_unverified_header(fresh["license"])["kid"] == new_key.kid
    assert "public" in device.get("/api/v1/keys")["Cache-Control"]
    max_age = int(device.get("/api/v1/keys")["Cache-Control"].split("max-age=")[1])
    assert max_age <= settings.KEYS_MAX_AGE.total_seconds()


def test_wrong_methods_and_bad_input(device, activated):
    assert_problem(device.get(ACTIVATE), 405, "method_not_allowed")
    assert_problem(device.get(SYNC), 405, "method_not_allowed")
    assert_problem(device.post("/api/v1/keys"), 405, "method_not_allowed")
    assert_problem(device.post(ACTIVATE, {"token": "x"}, format="json"), 400, "validation_error")
    bad_usage = device.post(
        SYNC,
        {"fingerprint": "fp-1", "usage": {"CALL_RECORDING": -1}},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {activated['credential']}",
    )
    assert_problem(bad_usage, 400, "validation_error")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_activations_with_one_token_one_wins(
    cast, perpetual, pending_server, token_for
):
    token = token_for(pending_server, cast.recording, 5)

    statuses = run_together(
        20, lambda n: activate(APIClient(), token, fingerprint=f"fp-{n}").status_code
    )

    assert sorted(statuses) == [201] + [409] * 19
    assert ServerCredential.objects.filter(server=pending_server).count() == 1
