"""The reference agent against a live test server: the whole flow."""

from datetime import datetime, timedelta

from django.utils import timezone

from appsuite_agent import cli
from orders.models import OrderLine
from smartaccounts.models import License
from tokens import services
from tokens.models import ActivationToken, Assignment, Server, ServerCredential
from tokens.signing import create_signing_key

from ...orders.payloads import in_days
from .conftest import live, quantities


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
