"""A shipped agent trusts the vendor's root packaged with it, and no other: the owner of the
on-premise machine makes a root of their own, endorses their own signing key with it, forges a
license (9,999 channels, no lease end) and points the agent at that root with
APPSUITE_ROOT_KEY. Outside development mode (--insecure-dev) the setting is ignored with a
warning, and the forgery is refused by offline-apply, activate, sync and status; nothing of it
is stored. In development mode the operator's root is honoured, with the service on this
machine only, and status and diagnose say the agent is not licensed for production use."""

import json
import time

import pytest

from appsuite_agent import cli
from appsuite_agent.state import load

from .https_service import Service, https_service
from .support import Vendor, write

FORGED_CHANNELS = 9999
IGNORED = "APPSUITE_ROOT_KEY is ignored"


@pytest.fixture
def site(monkeypatch, tmp_path) -> Vendor:
    """The site's own root and signing key (the vendor's root stays the packaged one)."""
    forger = Vendor()
    monkeypatch.setenv("APPSUITE_ROOT_KEY", forger.root_text)
    return forger


def forged_files(site: Vendor, folder, **claims) -> tuple[str, str]:
    keys = write(folder / "site-keys.json", {"keys": [site.jwk()]})
    license_file = write(
        folder / "forged.json", {"license": site.document(quantity=FORGED_CHANNELS, **claims)}
    )
    return license_file, keys


@pytest.mark.parametrize("given_as", ["key", "file"])
def test_offline_apply_refuses_a_license_endorsed_by_the_sites_own_root(
    vendor, site, agent, tmp_path, monkeypatch, given_as
):
    if given_as == "file":
        root_file = tmp_path / "site-root.pub"
        root_file.write_text(site.root_text + "\n")
        monkeypatch.setenv("APPSUITE_ROOT_KEY", str(root_file))
    license_file, keys = forged_files(site, tmp_path)

    code, out = agent("offline-apply", license_file, "--keys", keys)

    assert code == cli.FAILED
    assert IGNORED in out and "for development only" in out
    assert f"({vendor.root_kid}, packaged with the agent)" in out
    assert not (agent.state_dir / "state.json").exists()  # nothing stored
    code, out = agent("status")
    assert code == cli.UNLICENSED and "State:    not activated" in out
    assert str(FORGED_CHANNELS) not in out


def test_a_forgery_does_not_replace_the_vendors_license(vendor, site, agent, tmp_path):
    genuine_keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})
    assert (
        agent(
            "offline-apply",
            write(tmp_path / "l.json", {"license": vendor.document()}),
            "--keys",
            genuine_keys,
        )[0]
        == cli.OK
    )
    held = (agent.state_dir / "state.json").read_text()
    license_file, keys = forged_files(site, tmp_path, iat=time.time() + 60)

    code, out = agent("offline-apply", license_file, "--keys", keys)

    assert code == cli.FAILED and IGNORED in out
    assert (agent.state_dir / "state.json").read_text() == held
    code, out = agent("status")
    assert code == cli.OK and "CALL_RECORDING: 10 " in out and str(FORGED_CHANNELS) not in out


def test_a_root_written_into_the_state_file_is_not_trusted(vendor, site, agent, tmp_path):
    """Whatever the state file says (a root of its own, keys the site's root endorses, the
    forged document), status trusts the packaged root only."""
    genuine_keys = write(tmp_path / "keys.json", {"keys": [vendor.jwk()]})
    agent(
        "offline-apply",
        write(tmp_path / "l.json", {"license": vendor.document()}),
        "--keys",
        genuine_keys,
    )
    state_file = agent.state_dir / "state.json"
    state = json.loads(state_file.read_text())
    state.update(
        root=site.root_text,
        root_key=site.root_text,
        vendor_root=site.root_text,
        keys={site.kid: site.jwk()},
        document=site.document(quantity=FORGED_CHANNELS),
    )
    state_file.write_text(json.dumps(state))

    for argv in (["status"], ["status", "--json"]):
        code, out = agent(*argv)

        assert code == cli.UNLICENSED
        assert "not endorsed by the vendor's root key" in out
        assert str(FORGED_CHANNELS) not in out
        assert vendor.root_kid in out and site.root_kid not in out


def test_in_development_the_operators_root_is_honoured_and_said_not_for_production(
    vendor, site, agent, tmp_path
):
    license_file, keys = forged_files(site, tmp_path)

    code, out = agent("--insecure-dev", "offline-apply", license_file, "--keys", keys)

    assert code == cli.OK, out
    assert IGNORED not in out
    assert "NOT LICENSED FOR PRODUCTION USE (ROOT: OPERATOR-SUPPLIED, DEVELOPMENT ONLY)" in out
    assert f"Root key: {site.root_kid} (operator-supplied via APPSUITE_ROOT_KEY" in out
    code, out = agent("--insecure-dev", "status", "--json")
    report = json.loads(agent.stdout)
    assert report["development_only"] is True
    assert report["warning"] == (
        "not licensed for production use (root: operator-supplied, development only)"
    )
    # The same agent outside development mode: the document is not trusted any more.
    code, out = agent("status")
    assert code == cli.UNLICENSED and IGNORED in out
    assert "held document refused" in out and str(FORGED_CHANNELS) not in out
    code, out = agent("status", "--json")
    assert json.loads(agent.stdout)["development_only"] is False


def test_in_development_the_operators_root_talks_to_this_machine_only(site, agent):
    code, out = agent(
        "--insecure-dev", "activate", "act_x", "--url", "https://licensing.example.com"
    )

    assert code == cli.FAILED
    assert "operator-supplied root key" in out and "on this machine" in out
    assert not (agent.state_dir / "state.json").exists()
    code, out = agent("--insecure-dev", "diagnose", "--url", "https://licensing.example.com")
    assert code == cli.FAILED and "on this machine" in out
    assert "NOT LICENSED FOR PRODUCTION USE" in out


def online(issuer: Vendor, quantity: int = 10, **claims) -> str:
    """A document as activation and sync hand out: online, with a lease (30 days unless
    given)."""
    return issuer.document(mode="online", quantity=quantity, **{"lease": 30 * 86400, **claims})


def test_the_https_stand_in_is_faithful_the_vendors_documents_activate_and_sync(
    vendor, agent, tmp_path
):
    """The control for the next test: the same service with the vendor's documents."""
    service = Service(keys=[vendor.jwk()], document=online(vendor))
    with https_service(tmp_path, service):
        tls = ("--ca-file", service.ca_file)
        code, out = agent(*tls, "activate", "act_x", "--url", service.url)
        assert code == cli.OK, out
        assert "Activated online as server srv-1" in out and "State:    licensed" in out

        code, out = agent(*tls, "sync")
        assert code == cli.OK and "License is up to date." in out

    assert load(agent.state_dir).etag == service.etag


def test_activate_and_sync_refuse_a_services_documents_under_the_sites_root(
    vendor, site, agent, tmp_path
):
    """The site runs its own stand-in of the service (over HTTPS, as a shipped agent insists)
    publishing its own endorsed key and handing out the forgery."""
    service = Service(keys=[site.jwk()], document=online(site, FORGED_CHANNELS, lease=1e9))
    with https_service(tmp_path, service):
        tls = ("--ca-file", service.ca_file)

        code, out = agent(*tls, "activate", "act_x", "--url", service.url)

        assert code == cli.FAILED and IGNORED in out
        assert "refused" in out and "Not activated" in out
        state = load(agent.state_dir)
        assert (state.document, state.etag, state.mode, state.last_verified_at) == ("", "", "", 0)

        code, out = agent(*tls, "sync")

        assert code == cli.FAILED and "document refused" in out
        assert "State:    not activated" in out and "up to date" not in out
        state = load(agent.state_dir)
        assert (state.document, state.etag) == ("", "")

        code, out = agent(*tls, "status")
        assert code == cli.UNLICENSED and "State:    not activated" in out
        assert str(FORGED_CHANNELS) not in out
    # Every sync asked for the document afresh: none claimed to hold one.
    syncs = [r for r in service.requests if r[1] == "/api/v1/activation/sync"]
    assert len(syncs) == 1


def test_a_refused_sync_keeps_nothing_of_the_refused_document(vendor, site, agent, tmp_path):
    service = Service(keys=[vendor.jwk()], document=online(vendor))
    with https_service(tmp_path, service):
        tls = ("--ca-file", service.ca_file)
        assert agent(*tls, "activate", "act_x", "--url", service.url)[0] == cli.OK
        held = load(agent.state_dir)
        # The service now hands out a forgery, signed by a key the site's root endorses.
        service.keys = [vendor.jwk(), site.jwk()]
        service.document = online(site, FORGED_CHANNELS, iat=time.time() + 5)
        service.etag = '"forged"'

        for _ in range(2):  # refused each time, never "up to date"
            code, out = agent(*tls, "sync")

            assert code == cli.FAILED and "document refused" in out and "up to date" not in out
            state = load(agent.state_dir)
            assert (state.document, state.etag) == (held.document, held.etag)
            assert "State:    licensed" in out and str(FORGED_CHANNELS) not in out
