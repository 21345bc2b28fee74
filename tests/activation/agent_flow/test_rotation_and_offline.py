"""The reference agent: key rotation, offline activation, abuse, outages and the clock."""

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from smartaccounts.models import AuditEvent, License
from tokens import services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential
from tokens.secrets import new_activation_token
from tokens.signing import _cache, create_signing_key

from ...orders.payloads import assert_problem
from .conftest import UNREACHABLE, claims_of, exchange, live, quantities


@live
def test_key_rotation_keeps_the_fleet_licensed(cast, activated, pending_server, portal, system):
    old_kid = jwt.get_unverified_header(activated.state["document"])["kid"]
    assert set(activated.state["keys"]) == {old_kid}

    new_kid = create_signing_key().kid

    assert new_kid != old_kid
    code, report = activated.status()
    assert code == 0 and report["state"] == "licensed"  # the old document still verifies
    published = {key["kid"] for key in portal.keys()["keys"]}
    assert {old_kid, new_kid} <= published

    # Nothing changed: 304 and the agent keeps its document.
    assert "up to date" in activated("sync").out

    # Within the /keys cache lifetime the previous key still signs (S22)...
    services.assign_capacity(
        server=pending_server, product=cast.recording, quantity=10, actor=system
    )
    assert activated("sync").code == 0
    assert jwt.get_unverified_header(activated.state["document"])["kid"] == old_kid

    # ...after it, the next document carries the new kid; the agent fetches the keys.
    services.assign_capacity(
        server=pending_server, product=cast.recording, quantity=11, actor=system
    )
    later = timezone.now() + settings.KEYS_MAX_AGE + timedelta(minutes=2)
    with time_machine.travel(later, tick=False):
        _cache.clear()
        run = activated("sync")
    assert run.code == 0, run.err
    assert "License updated." in run.out
    assert jwt.get_unverified_header(activated.state["document"])["kid"] == new_kid
    assert {old_kid, new_kid} <= set(activated.state["keys"])
    code, report = activated.status()
    assert code == 0 and quantities(report)["CALL_RECORDING"] == 11
    assert old_kid in {key["kid"] for key in portal.keys()["keys"]}


@pytest.mark.django_db
def test_offline_exchange_for_perpetual_capacity(
    cast, perpetual, perpetual_token, pending_server, portal, machine, tmp_path, system
):
    agent = machine("air-gapped")
    request_file = tmp_path / "request.json"
    keys_file = tmp_path / "keys.json"
    assert agent("offline-request", perpetual_token, "--out", str(request_file)).code == 0
    request = json.loads(request_file.read_text())
    assert request["token"] == perpetual_token and request["fingerprint"] == "fp-air-gapped"
    assert request["nonce"]

    license_file, document = exchange(portal, agent, pending_server, request_file, "lic-1.json")
    keys_file.write_text(json.dumps(portal.keys()))

    server = Server.objects.get(pk=pending_server.pk)
    assert server.state == "offline" and server.fingerprint == "fp-air-gapped"
    assert ActivationToken.objects.get(server=server).used_at is not None
    assert not ServerCredential.objects.filter(server=server).exists()
    assert License.objects.get(pk=perpetual.pk).assigned == 10
    claims = claims_of(document)
    assert claims["mode"] == "offline" and "exp" not in claims
    assert claims["fingerprint"] == "fp-air-gapped" and claims["services"] == []

    run = agent("offline-apply", str(license_file), "--keys", str(keys_file))
    assert run.code == 0, run.err
    code, report = agent.status()
    assert code == 0 and report["state"] == "licensed" and report["mode"] == "offline"
    assert report["server_id"] == str(server.pk)
    assert quantities(report) == {"CALL_RECORDING": 10}
    app = report["applications"][0]
    assert app["kind"] == "perpetual" and app["care_status"] == "active"
    assert datetime.fromisoformat(app["care_ends_at"]) == perpetual.care_ends_at

    # The same request again: the very same file, no further capacity, no new event.
    events = AuditEvent.objects.filter(object_id=str(server.pk)).count()
    _, again = exchange(portal, agent, pending_server, request_file, "lic-1b.json")
    assert again == document
    assert License.objects.get(pk=perpetual.pk).assigned == 10
    assert Assignment.objects.get(server=server).quantity == 10
    assert AuditEvent.objects.filter(object_id=str(server.pk)).count() == events

    # After an expansion assigned to the offline server, the exchange gives a new file.
    assert portal.assign(str(server.pk), "CALL_RECORDING", 16)["quantity"] == 16
    license_file, refreshed = exchange(portal, agent, pending_server, request_file, "lic-2.json")
    assert refreshed != document
    assert sum(e["quantity"] for e in claims_of(refreshed)["entitlements"]) == 16
    assert License.objects.get(pk=perpetual.pk).assigned == 16
    assert Server.objects.get(pk=server.pk).state == "offline"
    run = agent("offline-apply", str(license_file), "--keys", str(keys_file))
    assert run.code == 0, run.err
    assert quantities(agent.status()[1]) == {"CALL_RECORDING": 16}


@pytest.mark.django_db
def test_offline_exchange_is_refused_for_subscription_capacity(
    cast, perpetual, subscription, perpetual_token, pending_server, portal, machine, tmp_path
):
    portal.assign(str(pending_server.pk), "ATTENDANT_CONSOLE", 2)
    agent = machine("air-gapped")
    request_file = tmp_path / "request.json"
    assert agent("offline-request", perpetual_token, "--out", str(request_file)).code == 0

    response = portal.offline_activation(
        str(pending_server.pk), json.loads(request_file.read_text())
    )

    assert_problem(response, 422, "subscription_requires_online")
    server = Server.objects.get(pk=pending_server.pk)
    assert server.state == "pending" and server.fingerprint == "" and not server.offline_document
    assert ActivationToken.objects.get(server=server).used_at is None


@live
def test_guessing_tokens_through_the_agent_is_rate_limited(
    online_token, pending_server, live_server, machine, settings
):
    settings.FAILED_ATTEMPTS_LIMIT = 3
    agent = machine("guesser")
    for _ in range(3):
        run = agent("activate", new_activation_token(), "--url", live_server.url)
        assert run.code == 1 and "401 token_invalid" in run.err

    run = agent("activate", new_activation_token(), "--url", live_server.url)
    assert run.code == 1 and "429 rate_limited" in run.err
    # Even the good token waits now: the address is refused before any token is looked at.
    run = agent("activate", online_token, "--url", live_server.url)
    assert run.code == 1 and "429 rate_limited" in run.err
    assert Server.objects.get(pk=pending_server.pk).state == "pending"
    assert not ServerCredential.objects.exists()


@live
def test_an_unreachable_service_keeps_the_license_until_the_lease_ends(activated):
    activated.edit_state(url=UNREACHABLE)

    run = activated("sync")

    assert run.code == 1
    assert "service unreachable" in run.err
    code, report = activated.status()
    assert code == 0 and report["state"] == "licensed"
    assert "service unreachable" in report["last_error"]
    with time_machine.travel(timezone.now() + timedelta(days=31), tick=False):
        code, report = activated.status()
    assert code == 2 and report["state"] == "lease expired"


@live
def test_clock_rollback_is_an_error_not_a_licence(activated):
    last = activated.state["last_verified_at"]

    with time_machine.travel(datetime.fromtimestamp(last - 1800, UTC), tick=False):
        assert activated.status()[0] == 0  # within the tolerance
    with time_machine.travel(datetime.fromtimestamp(last - 2 * 3600, UTC), tick=False):
        run = activated("status")
        code, report = activated.status()

    assert run.code == 2 and "clock rollback" in run.out
    assert code == 2 and report["state"] == "error" and "clock rollback" in report["error"]
    assert activated.status()[0] == 0  # the clock put right, all is well again


@live
def test_diagnose_reports_a_reachable_service(live_server, machine):
    agent = machine("new-server")

    run = agent("diagnose", "--url", live_server.url)

    assert run.code == 0, run.out
    assert "Keys:         /api/v1/keys answered 200" in run.out
    assert "Clock skew:" in run.out
    assert "Verdict:      OK" in run.out

    run = agent("diagnose", "--url", UNREACHABLE)
    assert run.code == 1
    assert "NOT OK" in run.out and "cannot be reached" in run.out
