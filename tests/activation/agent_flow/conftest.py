"""The reference agent (`appsuite-agent`) against a live test server (S3-S7, S18).

The agent runs in-process (`appsuite_agent.cli.main`) with its state folder under tmp_path and
the machine it runs on simulated by APPSUITE_FINGERPRINT; the portal side goes through the
partner API with Alice's API key, as a reseller's ordering system would.
"""

import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest

from appsuite_agent import cli
from tokens import services
from tokens.signing import create_signing_key

from ...conftest import api_client_for

live = pytest.mark.django_db(transaction=True)

CAROL = {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"}
UNREACHABLE = "http://127.0.0.1:9"


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


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


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
