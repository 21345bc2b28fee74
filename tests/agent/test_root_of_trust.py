"""The agent's root of trust (S20, S23), tried as the owner of the on-premise machine would:
a self-made signing key offered in a --keys file or written into the state file, a key
endorsed by another root, a document from the future, a corrupted state file, plain http.

No Django here: the vendor's root and signing keys are made in the test, as the service makes
them (tokens/trust.py), and the agent runs in-process against files only."""

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appsuite_agent import cli, trust
from appsuite_agent.state import load
from appsuite_agent.trust import load_root

from .conftest import SHIPPED_ROOT
from .support import b64, raw_public, write


def test_a_license_signed_by_the_vendors_endorsed_key_is_installed(vendor, agent, tmp_path):
    keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})
    file = write(tmp_path / "license.json", {"license": vendor.document()})

    code, out = agent("offline-apply", file, "--keys", keys)

    assert code == cli.OK, out
    code, out = agent("status")
    assert code == cli.OK and "State:    licensed" in out and "CALL_RECORDING: 10" in out
    assert f"Root key: {vendor.root_kid} (packaged with the agent)" in out
    assert "PRODUCTION" not in out


def test_a_self_made_key_in_a_keys_file_installs_nothing_on_a_fresh_agent(vendor, agent, tmp_path):
    evil = Ed25519PrivateKey.generate()
    evil_jwk = {"kty": "OKP", "crv": "Ed25519", "kid": "evil", "x": b64(raw_public(evil))}
    keys = write(tmp_path / "evil-keys.json", {"keys": [evil_jwk]})
    forged = vendor.document(private=evil, kid="evil", quantity=100_000)
    file = write(tmp_path / "forged.json", {"license": forged})

    code, out = agent("offline-apply", file, "--keys", keys)

    assert code == cli.FAILED
    assert "not endorsed by the vendor's root key" in out or "no key in" in out
    assert agent("status")[0] != cli.OK
    assert not load(agent.state_dir).document


def test_a_key_endorsed_by_another_root_or_for_another_key_is_refused(vendor, agent, tmp_path):
    other_root = Ed25519PrivateKey.generate()
    evil = Ed25519PrivateKey.generate()
    by_other_root = vendor.jwk(private=evil, kid="evil-a", by=other_root)
    # A real endorsement of the vendor's key, pasted onto the attacker's key.
    stolen = vendor.jwk(private=evil, kid=vendor.kid)
    stolen["endorsement"] = vendor.jwk()["endorsement"]
    for key, kid in ((by_other_root, "evil-a"), (stolen, vendor.kid)):
        keys = write(tmp_path / "keys.json", {"keys": [key]})
        forged = vendor.document(private=evil, kid=kid, quantity=100_000)
        file = write(tmp_path / "forged.json", {"license": forged})

        code, out = agent("offline-apply", file, "--keys", keys)

        assert code == cli.FAILED, out
        assert not load(agent.state_dir).document


def test_a_forged_file_does_not_replace_a_licensed_agents_document(vendor, agent, tmp_path):
    good_keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})
    agent(
        "offline-apply",
        write(tmp_path / "l.json", {"license": vendor.document()}),
        "--keys",
        good_keys,
    )
    held = load(agent.state_dir).document
    evil = Ed25519PrivateKey.generate()
    evil_keys = write(
        tmp_path / "evil.json",
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "evil", "x": b64(raw_public(evil))}]},
    )
    forged = vendor.document(private=evil, kid="evil", quantity=100_000, iat=time.time() + 60)

    code, _ = agent(
        "offline-apply", write(tmp_path / "f.json", {"license": forged}), "--keys", evil_keys
    )

    assert code == cli.FAILED
    assert load(agent.state_dir).document == held
    code, out = agent("status")
    assert code == cli.OK and "100000" not in out


def test_keys_and_document_written_into_the_state_file_gain_nothing(vendor, agent, tmp_path):
    keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})
    agent(
        "offline-apply", write(tmp_path / "l.json", {"license": vendor.document()}), "--keys", keys
    )
    evil = Ed25519PrivateKey.generate()
    state_file = agent.state_dir / "state.json"
    state = json.loads(state_file.read_text())
    state["keys"] = {
        "evil": {"kty": "OKP", "crv": "Ed25519", "kid": "evil", "x": b64(raw_public(evil))}
    }
    state["document"] = vendor.document(private=evil, kid="evil", quantity=100_000)
    state_file.write_text(json.dumps(state))

    code, out = agent("status")

    assert code == cli.UNLICENSED
    assert "not endorsed" in out and "100000" not in out


def test_a_document_from_the_future_is_refused_and_moves_no_reference(vendor, agent, tmp_path):
    keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})
    agent(
        "offline-apply", write(tmp_path / "l.json", {"license": vendor.document()}), "--keys", keys
    )
    reference = load(agent.state_dir).last_verified_at
    future = vendor.document(iat=time.time() + 3 * 3600, quantity=99)

    code, out = agent(
        "offline-apply", write(tmp_path / "f.json", {"license": future}), "--keys", keys
    )

    assert code == cli.FAILED and "future" in out
    state = load(agent.state_dir)
    assert state.last_verified_at == reference
    assert "99 " not in agent("status")[1]


def test_a_document_signed_outside_the_keys_endorsed_window_is_refused(vendor, agent, tmp_path):
    expired = vendor.jwk(nbf=time.time() - 10 * 86400, exp=time.time() - 5 * 86400)
    keys = write(tmp_path / "keys.json", {"keys": [expired]})

    code, out = agent(
        "offline-apply", write(tmp_path / "l.json", {"license": vendor.document()}), "--keys", keys
    )

    assert code == cli.FAILED and "endorsed window" in out


@pytest.mark.parametrize("content", ["", '{"keys": ', "[1, 2]", '{"document": 5}'])
def test_a_corrupted_state_file_is_a_clear_error_with_a_way_out(vendor, agent, tmp_path, content):
    agent.state_dir.mkdir(parents=True)
    (agent.state_dir / "state.json").write_text(content)

    code, out = agent("status")

    assert code == cli.FAILED
    assert "unreadable" in out and "--force" in out and "Traceback" not in out
    # An offline server recovers by applying a fresh license file.
    keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})
    code, _ = agent(
        "offline-apply", write(tmp_path / "l.json", {"license": vendor.document()}), "--keys", keys
    )
    assert code == cli.OK
    assert agent("status")[0] == cli.OK


@pytest.mark.parametrize(
    ("url", "flags", "refused"),
    [
        ("http://licensing.example.com", ["--insecure-dev"], "must be reached over https"),
        ("http://10.0.0.5:8000", ["--insecure-dev"], "must be reached over https"),
        ("http://127.0.0.1:9", [], "--insecure-dev"),
        ("ftp://licensing.example.com", [], "not an https"),
    ],
)
def test_plain_http_is_refused_except_on_loopback_with_the_flag(
    vendor, tmp_path, capsys, url, flags, refused
):
    code = cli.main([*flags, "--state-dir", str(tmp_path / "s"), "activate", "act_x", "--url", url])

    assert code == cli.FAILED
    assert refused in capsys.readouterr().err


def test_loopback_http_with_the_flag_is_allowed_to_try(vendor, tmp_path, capsys):
    code = cli.main(
        [
            "--insecure-dev",
            "--state-dir",
            str(tmp_path / "s"),
            "activate",
            "act_x",
            "--url",
            "http://127.0.0.1:9",
        ]
    )

    assert code == cli.FAILED
    assert "cannot reach the licensing service" in capsys.readouterr().err


def test_the_root_comes_from_the_package_and_an_operators_only_in_development(
    monkeypatch, tmp_path, vendor
):
    packaged = load_root()
    assert packaged.source == "packaged with the agent" and not packaged.operator_supplied
    assert trust.PACKAGED_ROOT.read_text().strip() == "ed25519:" + b64(packaged.raw)

    site_root = tmp_path / "root.pub"
    site_root.write_text("ed25519:" + b64(raw_public(Ed25519PrivateKey.generate())) + "\n")
    monkeypatch.setenv("APPSUITE_ROOT_KEY", str(site_root))
    assert load_root() == packaged  # a shipped agent: the setting is not honoured
    development = load_root(development=True)
    assert development.raw != packaged.raw and development.operator_supplied
    assert str(site_root) in development.source and "development only" in development.source


def test_an_unreadable_root_setting_is_a_clear_error_in_development(monkeypatch, agent, vendor):
    monkeypatch.setenv("APPSUITE_ROOT_KEY", "ed25519:not-a-key")

    code, out = agent("--insecure-dev", "status")

    assert code == cli.FAILED and "APPSUITE_ROOT_KEY" in out and "Traceback" not in out


def test_the_shipped_root_does_not_trust_a_test_vendors_keys(monkeypatch, agent, tmp_path, vendor):
    monkeypatch.setattr(trust, "PACKAGED_ROOT", SHIPPED_ROOT)
    keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})

    code, out = agent(
        "offline-apply", write(tmp_path / "l.json", {"license": vendor.document()}), "--keys", keys
    )

    assert code == cli.FAILED and "packaged with the agent" in out
