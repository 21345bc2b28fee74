"""The reference agent against a live test server: a refused document leaves nothing behind,
and a sync reports every usage it is given."""

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tokens.models import Server

from ...agent.support import b64, raw_public
from .conftest import live, quantities

# A root that endorses none of the service's keys: the agent set up with the wrong root.
WRONG_ROOT = "ed25519:" + b64(raw_public(Ed25519PrivateKey.generate()))


@live
def test_a_refused_activation_keeps_nothing_and_the_next_sync_fetches_the_document(
    online_token, live_server, machine, monkeypatch, vendor_root
):
    agent = machine("pbx")
    monkeypatch.setenv("APPSUITE_ROOT_KEY", WRONG_ROOT)

    run = agent("activate", online_token, "--url", live_server.url)

    assert run.code == 1 and "license document was refused" in run.err
    state = agent.state
    assert state["credential"]  # the activation happened: a later sync can fetch a document
    assert (state["document"], state["etag"], state["mode"]) == ("", "", "")
    assert "Not activated" in run.out
    # Not activated, and every sync says so: none hears 304 "up to date".
    for _ in range(2):
        run = agent("sync")

        assert run.code == 1 and "document refused" in run.err
        assert "State:    not activated" in run.out and "up to date" not in run.out
        assert (agent.state["document"], agent.state["etag"]) == ("", "")
    code, report = agent.status()
    assert code == 2 and report["state"] == "not activated"
    assert "refused" in report["last_error"]

    # The root put right: the next sync fetches the document.
    monkeypatch.setenv("APPSUITE_ROOT_KEY", vendor_root)
    run = agent("sync")

    assert run.code == 0, run.err
    assert "License updated." in run.out
    code, report = agent.status()
    assert code == 0 and quantities(report) == {"CALL_RECORDING": 10, "ATTENDANT_CONSOLE": 2}
    etag = agent.state["etag"]
    assert etag and "up to date" in agent("sync").out


@live
def test_an_etag_without_a_document_is_never_up_to_date(activated):
    """A state file an earlier agent left (the ETag of a document it never held)."""
    etag = activated.state["etag"]
    activated.edit_state(document="")

    run = activated("sync")

    assert run.code == 0, run.err
    assert "License updated." in run.out and "up to date" not in run.out
    assert activated.state["document"] and activated.state["etag"] == etag
    assert activated.status()[0] == 0


@live
def test_sync_reports_every_usage_given(activated, pending_server):
    run = activated("sync", "--usage", "CALL_RECORDING=3", "--usage", "ATTENDANT_CONSOLE=1")

    assert run.code == 0, run.err
    reported = Server.objects.get(pk=pending_server.pk).reported_usage
    assert reported == {"CALL_RECORDING": 3, "ATTENDANT_CONSOLE": 1}

    # Several after one --usage, as before (changes large enough to be recorded at once).
    run = activated("sync", "--usage", "CALL_RECORDING=9", "ATTENDANT_CONSOLE=5")

    assert run.code == 0, run.err
    reported = Server.objects.get(pk=pending_server.pk).reported_usage
    assert reported == {"CALL_RECORDING": 9, "ATTENDANT_CONSOLE": 5}
