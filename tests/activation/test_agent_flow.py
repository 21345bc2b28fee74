"""The reference agent (`appsuite-agent`) against a live test server (S3-S7, S18).

The agent runs in-process (`appsuite_agent.cli.main`) with its state folder under tmp_path and
the machine it runs on simulated by APPSUITE_FINGERPRINT; the portal side goes through the
partner API with Alice's API key, as a reseller's ordering system would.
"""

import base64
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.utils import timezone

from appsuite_agent import cli
from appsuite_agent.state import load
from appsuite_agent.trust import load_root
from appsuite_agent.verify import Refused, UnknownKey, verify
from orders.models import OrderLine
from smartaccounts.models import AuditEvent, License
from tokens import services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential
from tokens.secrets import new_activation_token
from tokens.signing import _cache, create_signing_key

from ..concurrency import run_together
from ..conftest import api_client_for, requires_postgres
from ..orders.payloads import assert_problem, in_days

live = pytest.mark.django_db(transaction=True)

CAROL = {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"}
UNREACHABLE = "http://127.0.0.1:9"


# --- the agent, as an operator runs it -------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str


class Agent:
    """One AppSuite machine: a state folder and a fingerprint."""

    def __init__(self, folder: Path, fingerprint: str, monkeypatch, capsys) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def __call__(self, *argv: str) -> Run:
        self._monkeypatch.setenv("APPSUITE_FINGERPRINT", self.fingerprint)
        self._capsys.readouterr()
        # The live test server speaks plain http on loopback: a development setup.
        code = cli.main(["--insecure-dev", "--state-dir", str(self.folder), *argv])
        out, err = self._capsys.readouterr()
        return Run(code, out, err)

    def status(self) -> tuple[int, dict]:
        run = self("status", "--json")
        return run.code, json.loads(run.out)

    @property
    def state(self) -> dict:
        return json.loads((self.folder / "state.json").read_text())

    def edit_state(self, **changes) -> None:
        self.folder.joinpath("state.json").write_text(json.dumps({**self.state, **changes}))

    def clone_to(self, folder: Path, fingerprint: str) -> "Agent":
        shutil.copytree(self.folder, folder)
        return Agent(folder, fingerprint, self._monkeypatch, self._capsys)


@pytest.fixture
def machine(tmp_path, monkeypatch, capsys):
    """`machine(name)` gives the agent of a machine called `name`."""

    def _machine(name: str) -> Agent:
        return Agent(tmp_path / name, f"fp-{name}", monkeypatch, capsys)

    return _machine


def quantities(report: dict) -> dict[str, int]:
    held: dict[str, int] = {}
    for app in report["applications"]:
        held[app["product"]] = held.get(app["product"], 0) + app["quantity"]
    return held


def claims_of(document: str) -> dict:
    return jwt.decode(document, options={"verify_signature": False})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def flip_char(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("B" if char != "B" else "C") + text[index + 1 :]


# --- the portal side, through the partner API --------------------------------------------------


class Portal:
    def __init__(self, org) -> None:
        self.client = api_client_for(org)

    def _ok(self, response, status: int = 200) -> dict:
        assert response.status_code == status, response.content
        return response.json()

    def order(self, reference: str, lines: list[dict]) -> dict:
        body = {"reference": reference, "customer": CAROL, "lines": lines}
        return self._ok(self.client.post("/api/v1/orders", body, format="json"), 201)

    def unlock(self, order_id: str) -> dict:
        return self._ok(self.client.post(f"/api/v1/orders/{order_id}/unlock"))

    def create_server(self, account_id: str, name: str) -> dict:
        body = {"name": name, "purpose": "production"}
        url = f"/api/v1/accounts/{account_id}/servers"
        return self._ok(self.client.post(url, body, format="json"), 201)

    def assign(self, server_id: str, product: str, quantity: int) -> dict:
        url = f"/api/v1/servers/{server_id}/assignments/{product}"
        return self._ok(self.client.put(url, {"quantity": quantity}, format="json"))

    def deactivate(self, server_id: str) -> dict:
        return self._ok(self.client.delete(f"/api/v1/servers/{server_id}"))

    def keys(self) -> dict:
        return self._ok(self.client.get("/api/v1/keys"))

    def offline_activation(self, server_id: str, request: dict):
        url = f"/api/v1/servers/{server_id}/offline-activation"
        return self.client.post(url, request, format="json")


@pytest.fixture
def portal(cast) -> Portal:
    return Portal(cast.alice_reseller)


@pytest.fixture
def signing_key(db):
    """A deployed service has its signing key before the first server activates (the
    deployment runs `rotate_signing_key`); the agent fetches /api/v1/keys first."""
    return create_signing_key()


@pytest.fixture
def online_token(cast, perpetual, subscription, pending_server, signing_key, system):
    """A pending server of Carol's holding perpetual and subscription capacity: its token."""
    result = services.assign_capacity(
        server=pending_server, product=cast.recording, quantity=10, actor=system
    )
    services.assign_capacity(server=pending_server, product=cast.console, quantity=2, actor=system)
    return result.token.raw


@pytest.fixture
def activated(online_token, live_server, machine):
    agent = machine("pbx")
    run = agent("activate", online_token, "--url", live_server.url)
    assert run.code == 0, run.err
    return agent


# --- the whole flow ---------------------------------------------------------------------------


@live
def test_order_unlock_assign_activate_sync_expand_renew_deactivate(
    cast, portal, signing_key, live_server, machine
):
    # A reseller's system orders for Carol and unlocks.
    order = portal.order(
        "PO-FLOW-1",
        [
            {
                "product": "CALL_RECORDING",
                "quantity": 20,
                "kind": "perpetual",
                "care_ends_at": in_days(365),
            },
            {
                "product": "ATTENDANT_CONSOLE",
                "quantity": 5,
                "kind": "subscription",
                "ends_at": in_days(180),
            },
        ],
    )
    assert order["state"] == "locked"
    assert portal.unlock(order["id"])["state"] == "unlocked"
    account_id = order["account"]["id"]
    assert account_id == str(cast.carol_customer.smart_account.pk)
    console_license = next(
        lic["id"] for lic in order["licenses"] if lic["product"] == "ATTENDANT_CONSOLE"
    )

    # A server is created and given capacity; the first assignment mints its token.
    server_id = portal.create_server(account_id, "pbx-1")["id"]
    first = portal.assign(server_id, "CALL_RECORDING", 8)
    token = first["token"]
    assert token and first["token_expires_at"]
    assert "token" not in portal.assign(server_id, "ATTENDANT_CONSOLE", 2)

    # The AppSuite server activates with it.
    agent = machine("pbx-1")
    run = agent("activate", token, "--url", live_server.url)
    assert run.code == 0, run.err
    assert f"Activated online as server {server_id}" in run.out
    server = Server.objects.get(pk=server_id)
    assert server.state == "active" and server.fingerprint == "fp-pbx-1"
    assert ServerCredential.objects.filter(server=server, revoked_at__isnull=True).count() == 1
    assert ActivationToken.objects.get(server=server).used_at is not None
    assert agent.state["credential"] not in {c.credential_hash for c in server.credentials.all()}
    code, report = agent.status()
    assert code == 0 and report["state"] == "licensed" and report["mode"] == "online"
    assert report["server_id"] == server_id and report["account"] == "Carol Corp"
    assert quantities(report) == {"CALL_RECORDING": 8, "ATTENDANT_CONSOLE": 2}

    # Sync, then sync again with nothing changed: 304.
    # Activation delivered the document with its ETag, so nothing is new for the first syncs
    # (the document is received through sync below, once something changes).
    held, etag = agent.state["document"], agent.state["etag"]
    assert etag
    for argv in (["--usage", "CALL_RECORDING=3"], []):
        run = agent("sync", *argv)
        assert run.code == 0, run.err
        assert "License is up to date." in run.out
    assert agent.state["document"] == held and agent.state["etag"] == etag

    # An expansion order, unlocked and assigned: the next sync carries it.
    expansion = portal.order(
        "PO-FLOW-2",
        [
            {
                "product": "CALL_RECORDING",
                "quantity": 10,
                "kind": "perpetual",
                "care_ends_at": in_days(365),
            }
        ],
    )
    assert OrderLine.objects.get(order_id=expansion["id"]).action == "expansion"
    portal.unlock(expansion["id"])
    assert portal.assign(server_id, "CALL_RECORDING", 15)["quantity"] == 15
    assert (
        sum(Assignment.objects.filter(server_id=server_id).values_list("quantity", flat=True))
        == 15 + 2
    )
    run = agent("sync")
    assert run.code == 0, run.err
    assert "License updated." in run.out
    code, report = agent.status()
    assert code == 0
    assert quantities(report) == {"CALL_RECORDING": 15, "ATTENDANT_CONSOLE": 2}

    # A renewal of the subscription: the next sync carries the new term and care dates.
    renewal = portal.order(
        "PO-FLOW-3",
        [{"renews": console_license, "ends_at": in_days(540), "care_ends_at": in_days(545)}],
    )
    assert renewal["state"] == "unlocked"
    renewed = License.objects.get(pk=console_license)
    assert renewed.care_ends_at > timezone.now() + timedelta(days=500)
    run = agent("sync")
    assert run.code == 0, run.err
    assert "License updated." in run.out
    code, report = agent.status()
    console = [a for a in report["applications"] if a["product"] == "ATTENDANT_CONSOLE"]
    assert len(console) == 1
    assert datetime.fromisoformat(console[0]["care_ends_at"]) == renewed.care_ends_at
    assert datetime.fromisoformat(console[0]["term_ends_at"]) == renewed.ends_at
    assert console[0]["care_status"] == "active"
    last_document = agent.state["document"]

    # Deactivation in the portal: the credential is revoked, the next sync is refused.
    assert portal.deactivate(server_id)["state"] == "deactivated"
    assert not ServerCredential.objects.filter(server_id=server_id, revoked_at__isnull=True)
    assert not Assignment.objects.filter(server_id=server_id).exists()
    assert set(
        License.objects.filter(account_id=account_id).values_list("assigned", flat=True)
    ) == {0}
    run = agent("sync")
    assert run.code == 2  # unlicensed
    assert "revoked" in run.err
    assert last_document and agent.state["document"] == ""

    # S21: revocation reaches the server at once, not when its lease would have ended.
    code, report = agent.status()
    assert code == 2 and report["state"] == "unlicensed"
    assert "revoked" in report["error"] and report.get("applications") is None
    # Writing the old document back into the state file gains nothing: the drop is kept.
    agent.edit_state(document=last_document)
    code, report = agent.status()
    assert code == 2 and report["state"] == "unlicensed"


@live
def test_the_first_activation_on_a_fresh_service_succeeds(
    cast, perpetual, pending_server, live_server, machine, system
):
    # No signing key yet: the service makes one when it signs its first document.
    token = services.assign_capacity(
        server=pending_server, product=cast.recording, quantity=3, actor=system
    ).token.raw
    agent = machine("first")

    run = agent("activate", token, "--url", live_server.url)

    assert run.code == 0, run.err
    assert agent.status()[0] == 0


@live
def test_activation_right_after_a_key_rotation_succeeds(
    online_token, pending_server, live_server, machine, monkeypatch
):
    fetch_keys = cli.fetch_keys

    def fetch_then_rotate(url, root):
        keys = fetch_keys(url, root)
        # An emergency rotation between the agent's two requests: the new key signs at once.
        create_signing_key(at_once=True)
        return keys

    monkeypatch.setattr(cli, "fetch_keys", fetch_then_rotate)
    agent = machine("pbx")

    run = agent("activate", online_token, "--url", live_server.url)

    assert run.code == 0, run.err
    assert agent.status()[0] == 0


# --- tokens -------------------------------------------------------------------------------------


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
def test_concurrent_activations_of_one_token_one_wins(
    online_token, pending_server, live_server, machine, monkeypatch
):
    agents = [machine(f"pbx-{n}") for n in range(10)]
    # The fingerprint comes from the environment, which the threads share.
    monkeypatch.setenv("APPSUITE_FINGERPRINT", "fp-racer")

    def attempt(n: int) -> int:
        agent = agents[n]
        argv = ["--insecure-dev", "--state-dir", str(agent.folder), "activate", online_token]
        return cli.main([*argv, "--url", live_server.url])

    codes = run_together(len(agents), attempt)

    assert sorted(codes) == [0] + [1] * (len(agents) - 1)
    assert ServerCredential.objects.filter(server=pending_server).count() == 1
    assert sum(1 for agent in agents if (agent.folder / "state.json").exists()) == 1
    server = Server.objects.get(pk=pending_server.pk)
    assert server.state == "active" and server.fingerprint == "fp-racer"


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


# --- clones and tampering ------------------------------------------------------------------------


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
        document, keys, root=load_root(), fingerprint=fingerprint, server_id=server_id
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
            verify(tampered, keys, root=load_root(), fingerprint=fingerprint, server_id=server_id)

    # alg none, with and without a signature.
    none_header = b64(json.dumps({"alg": "none", "kid": kid, "typ": "license+jwt"}).encode())
    for unsigned in (f"{none_header}.{payload}.", f"{none_header}.{payload}.{signature}"):
        with pytest.raises(Refused, match="algorithm"):
            verify(unsigned, keys, root=load_root(), fingerprint=fingerprint, server_id=server_id)

    # Signed by a key the agent does not know, under a new kid or under the genuine kid.
    rogue = Ed25519PrivateKey.generate()
    headers = {"kid": "rogue-key", "typ": "license+jwt"}
    forged = jwt.encode(claims, rogue, algorithm="EdDSA", headers=headers)
    with pytest.raises(UnknownKey):
        verify(forged, keys, root=load_root(), fingerprint=fingerprint, server_id=server_id)
    forged = jwt.encode(claims, rogue, algorithm="EdDSA", headers={**headers, "kid": kid})
    with pytest.raises(Refused, match="signature"):
        verify(forged, keys, root=load_root(), fingerprint=fingerprint, server_id=server_id)

    # Algorithm confusion: HMAC keyed with the public key.
    public = unb64(keys[kid]["x"])
    confused = jwt.encode(claims, public, algorithm="HS256", headers={**headers, "kid": kid})
    with pytest.raises(Refused, match="algorithm"):
        verify(confused, keys, root=load_root(), fingerprint=fingerprint, server_id=server_id)

    # A genuine document, but for another server or another machine.
    with pytest.raises(Refused, match="another server"):
        verify(
            document, keys, root=load_root(), fingerprint=fingerprint, server_id="another-server"
        )
    with pytest.raises(Refused, match="another machine"):
        verify(document, keys, root=load_root(), fingerprint="fp-other", server_id=server_id)


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


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
                    root=load_root(),
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
        cli._accept(state, older, root=load_root(), server_id=state.server_id, refresh_keys=False)
    assert state.document == newer
    code, report = activated.status()
    assert code == 0 and quantities(report)["CALL_RECORDING"] == 12


# --- key rotation -------------------------------------------------------------------------------


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


# --- offline ----------------------------------------------------------------------------------


@pytest.fixture
def perpetual_token(cast, perpetual, pending_server, system):
    result = services.assign_capacity(
        server=pending_server, product=cast.recording, quantity=10, actor=system
    )
    return result.token.raw


def exchange(portal, agent, server, request_file, name):
    response = portal.offline_activation(str(server.pk), json.loads(request_file.read_text()))
    assert response.status_code == 201, response.content
    license_file = agent.folder.parent / name
    license_file.write_text(json.dumps(response.json()))
    return license_file, response.json()["license"]


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


# --- abuse, outages and the clock ------------------------------------------------------------


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
