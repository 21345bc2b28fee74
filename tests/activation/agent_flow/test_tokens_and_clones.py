"""The reference agent: single-use tokens, cloned machines and tampered files."""

import json
from datetime import timedelta

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone

from appsuite_agent import cli
from appsuite_agent.state import load
from appsuite_agent.trust import load_root
from appsuite_agent.verify import Refused, UnknownKey, verify
from smartaccounts.models import AuditEvent
from tokens import services
from tokens.models import ActivationToken, Server, ServerCredential

from ...concurrency import run_together
from ...conftest import requires_postgres
from .conftest import BASE64URL, b64, claims_of, flip_char, live, quantities, unb64


def dev_root():
    """The root the live agent trusts: this test run's, given as APPSUITE_ROOT_KEY, which the
    agent honours in development mode (--insecure-dev) only."""
    return load_root(development=True)


@live
def test_a_token_activates_once(online_token, pending_server, live_server, machine):
    first, second = machine("pbx-a"), machine("pbx-b")

    assert first("activate", online_token, "--url", live_server.url).code == 0
    run = second("activate", online_token, "--url", live_server.url)

    assert run.code == 1
    assert "409 token_used" in run.err
    assert ServerCredential.objects.filter(server=pending_server).count() == 1
    assert Server.objects.get(pk=pending_server.pk).fingerprint == "fp-pbx-a"
    code, report = second.status()
    assert code == 2 and report["state"] == "not activated"
    assert first("sync").code == 0


@requires_postgres
@live
def test_concurrent_activations_of_one_token_from_one_machine_leave_one_live_credential(
    online_token, pending_server, live_server, machine, monkeypatch
):
    """Racing activations from one fingerprint are retries of each other (a lost answer): each
    is answered, one after another on the token's row lock, and only the last credential
    issued still works. Other machines racing are refused: see
    tests/activation/test_activation_api.py::test_twenty_concurrent_activations_with_one_token_one_wins.
    """
    agents = [machine(f"pbx-{n}") for n in range(10)]
    # The fingerprint comes from the environment, which the threads share.
    monkeypatch.setenv("APPSUITE_FINGERPRINT", "fp-racer")

    def attempt(n: int) -> int:
        agent = agents[n]
        argv = ["--insecure-dev", "--state-dir", str(agent.folder), "activate", online_token]
        return cli.main([*argv, "--url", live_server.url])

    codes = run_together(len(agents), attempt)

    assert codes == [0] * len(agents)
    credentials = ServerCredential.objects.filter(server=pending_server)
    assert credentials.count() == len(agents)
    assert credentials.filter(revoked_at__isnull=True).count() == 1
    assert Server.objects.filter(account=pending_server.account).count() == 1
    server = Server.objects.get(pk=pending_server.pk)
    assert server.state == "active" and server.fingerprint == "fp-racer"
    # Exactly one agent holds the live credential: its sync works, the others' are refused.
    synced = [
        cli.main(["--insecure-dev", "--state-dir", str(agent.folder), "sync"]) for agent in agents
    ]
    assert synced.count(0) == 1


@live
def test_an_expired_token_is_refused_and_creates_nothing(
    online_token, pending_server, live_server, machine
):
    ActivationToken.objects.filter(server=pending_server).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    agent = machine("pbx")

    run = agent("activate", online_token, "--url", live_server.url)

    assert run.code == 1
    assert "410 token_expired" in run.err
    assert not ServerCredential.objects.exists()
    server = Server.objects.get(pk=pending_server.pk)
    assert server.state == "pending" and server.fingerprint == ""
    assert ActivationToken.objects.get(server=server).used_at is None
    assert not (agent.folder / "state.json").exists()


@live
def test_a_cloned_machine_is_refused_flagged_and_audited(activated, pending_server, tmp_path):
    clone = activated.clone_to(tmp_path / "clone", "fp-clone")

    run = clone("sync")

    assert run.code == 1
    assert "409 fingerprint_mismatch" in run.err
    server = Server.objects.get(pk=pending_server.pk)
    assert server.clone_suspected_at is not None
    assert server.fingerprint == "fp-pbx"
    events = AuditEvent.objects.filter(
        action="server.fingerprint_mismatch", object_id=str(server.pk)
    )
    assert events.count() == 1
    # The clone cannot use the copied document either: it is bound to the original machine.
    code, report = clone.status()
    assert code == 2 and "another machine" in report["error"]
    # The original keeps syncing and stays licensed.
    run = activated("sync")
    assert run.code == 0, run.err
    assert activated.status()[0] == 0


@live
@pytest.mark.parametrize("part", ["payload", "signature"])
def test_a_tampered_held_document_is_refused_by_status(activated, part):
    header, payload, signature = activated.state["document"].split(".")
    if part == "payload":
        claims = json.loads(unb64(payload))
        for item in claims["entitlements"]:
            item["quantity"] = 9999
        tampered = ".".join([header, b64(json.dumps(claims).encode()), signature])
        flipped = ".".join([header, flip_char(payload, len(payload) // 2), signature])
    else:
        tampered = ".".join([header, payload, b64(bytes(64))])
        flipped = ".".join([header, payload, flip_char(signature, 10)])

    for document in (tampered, flipped):
        activated.edit_state(document=document)
        run = activated("status")
        assert run.code == 2
        assert "held document refused" in run.out
        assert "9999" not in run.out


@live
def test_verify_refuses_tampered_unsigned_and_unknown_key_documents(activated):
    state = load(activated.folder)
    document, keys, server_id = state.document, state.keys, state.server_id
    fingerprint = activated.fingerprint
    verify(
        document, keys, root=dev_root(), fingerprint=fingerprint, server_id=server_id
    )  # the genuine one
    header, payload, signature = document.split(".")
    claims = json.loads(unb64(payload))
    kid = jwt.get_unverified_header(document)["kid"]

    # One character flipped in the payload or in the signature.
    for tampered in (
        ".".join([header, flip_char(payload, 5), signature]),
        ".".join([header, payload, flip_char(signature, 20)]),
    ):
        with pytest.raises(Refused):
            verify(tampered, keys, root=dev_root(), fingerprint=fingerprint, server_id=server_id)

    # alg none, with and without a signature.
    none_header = b64(json.dumps({"alg": "none", "kid": kid, "typ": "license+jwt"}).encode())
    for unsigned in (f"{none_header}.{payload}.", f"{none_header}.{payload}.{signature}"):
        with pytest.raises(Refused, match="algorithm"):
            verify(unsigned, keys, root=dev_root(), fingerprint=fingerprint, server_id=server_id)

    # Signed by a key the agent does not know, under a new kid or under the genuine kid.
    rogue = Ed25519PrivateKey.generate()
    headers = {"kid": "rogue-key", "typ": "license+jwt"}
    forged = jwt.encode(claims, rogue, algorithm="EdDSA", headers=headers)
    with pytest.raises(UnknownKey):
        verify(forged, keys, root=dev_root(), fingerprint=fingerprint, server_id=server_id)
    forged = jwt.encode(claims, rogue, algorithm="EdDSA", headers={**headers, "kid": kid})
    with pytest.raises(Refused, match="signature"):
        verify(forged, keys, root=dev_root(), fingerprint=fingerprint, server_id=server_id)

    # Algorithm confusion: HMAC keyed with the public key.
    public = unb64(keys[kid]["x"])
    confused = jwt.encode(claims, public, algorithm="HS256", headers={**headers, "kid": kid})
    with pytest.raises(Refused, match="algorithm"):
        verify(confused, keys, root=dev_root(), fingerprint=fingerprint, server_id=server_id)

    # A genuine document, but for another server or another machine.
    with pytest.raises(Refused, match="another server"):
        verify(document, keys, root=dev_root(), fingerprint=fingerprint, server_id="another-server")
    with pytest.raises(Refused, match="another machine"):
        verify(document, keys, root=dev_root(), fingerprint="fp-other", server_id=server_id)


@live
def test_every_single_bit_flip_of_the_held_document_is_refused(activated):
    """S4, exhaustively over the compact serialization: each of the 6 bits of each character of
    header, payload and signature (the trailing bits of the last character included)."""
    state = load(activated.folder)
    document = state.document
    checked = 0
    for index, char in enumerate(document):
        if char == ".":
            continue
        value = BASE64URL.index(char)
        for bit in range(6):
            tampered = document[:index] + BASE64URL[value ^ (1 << bit)] + document[index + 1 :]
            with pytest.raises(Refused):
                verify(
                    tampered,
                    state.keys,
                    root=dev_root(),
                    fingerprint=activated.fingerprint,
                    server_id=state.server_id,
                )
            checked += 1
    assert checked == 6 * (len(document) - 2)


@live
def test_the_agent_never_accepts_an_older_document(
    cast, activated, pending_server, live_server, system
):
    older = activated.state["document"]
    services.assign_capacity(
        server=pending_server, product=cast.recording, quantity=12, actor=system
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        run = activated("sync")
    assert run.code == 0, run.err
    newer = activated.state["document"]
    assert claims_of(newer)["iat"] > claims_of(older)["iat"]

    state = load(activated.folder)
    with pytest.raises(Refused, match="older"):
        cli._accept(state, older, root=dev_root(), server_id=state.server_id, refresh_keys=False)
    assert state.document == newer
    code, report = activated.status()
    assert code == 0 and quantities(report)["CALL_RECORDING"] == 12
