"""The audit events orders, API keys, invitations, servers, tokens and activation write."""

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from lifecycle.services import run_daily_jobs
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import ApiKey, AuditEvent, License, User
from smartaccounts.services import create_api_key

from ...factories import (
    AuditEventFactory,
    LicenseFactory,
    ServerFactory,
)
from ...orders.payloads import URL, in_days, order_body, renewal_body
from ..conftest import START, activate, at, subscription, sync
from .conftest import (
    ERIN,
    PARTNER_ADDRESS,
    PORTAL_ADDRESS,
    SERVER_ADDRESS,
    assert_no_raw_secret,
    one,
    unlock_link,
)

pytestmark = pytest.mark.django_db


def test_order_and_api_key_services_write_their_events(
    cast, client, django_capture_on_commit_callbacks
):
    client.force_login(cast.alice_admin)
    created = client.post("/api-keys/", {"name": "ERP"}, REMOTE_ADDR=PORTAL_ADDRESS)
    assert created.status_code == 200
    raw_key = created.context["new_key"]
    key = ApiKey.objects.get(name="ERP")
    event = one("api_key.created", object_id=str(key.pk))
    assert event.actor_user == cast.alice_admin and event.organization == cast.alice_reseller
    assert event.address == PORTAL_ADDRESS and event.account is None
    assert event.data == {"name": "ERP", "prefix": key.prefix}

    erp = APIClient()
    erp.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    with django_capture_on_commit_callbacks(execute=True):
        response = erp.post(
            URL, order_body("PO-A1", ERIN), format="json", REMOTE_ADDR=PARTNER_ADDRESS
        )
    assert response.status_code == 201, response.content
    order = Order.objects.get(reference="PO-A1")
    account = order.account
    received = one("order.received", object_id=str(order.pk))
    assert received.actor_api_key == key and received.actor_user is None
    assert received.actor_label == f"API key {key.prefix}… (ERP)"
    assert received.organization == cast.alice_reseller and received.account == account
    assert received.address == PARTNER_ADDRESS
    assert received.data == {"reference": "PO-A1", "lines": 2}
    new_licenses = AuditEvent.objects.filter(action="license.created", account=account)
    assert {e.object_id for e in new_licenses} == {
        str(pk) for pk in License.objects.filter(account=account).values_list("pk", flat=True)
    }
    assert {e.address for e in new_licenses} == {PARTNER_ADDRESS}
    sent = one("order.email_sent", object_id=str(order.pk))
    assert sent.actor_label == "outbox" and sent.address is None and sent.account == account
    assert sent.data == {"to": ["orders@alice.example"], "with_unlock_link": True}
    _, first_secret = unlock_link(mail.outbox[-1])

    client.force_login(cast.alice_member)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/orders/{order.pk}/resend/", REMOTE_ADDR=PORTAL_ADDRESS)
    resent = one("order.email_resent", object_id=str(order.pk))
    assert resent.actor_user == cast.alice_member and resent.account == account
    assert resent.address == PORTAL_ADDRESS
    assert (
        AuditEvent.objects.filter(action="order.email_sent", object_id=str(order.pk)).count() == 2
    )
    second_path, second_secret = unlock_link(mail.outbox[-1])

    with django_capture_on_commit_callbacks(execute=True):
        assert Client().post(second_path, REMOTE_ADDR="192.0.2.200").status_code == 200
    unlocked = one("order.unlocked", object_id=str(order.pk))
    assert unlocked.actor_label == "unlock link sent to Alice Reseller"
    assert unlocked.actor_user is None and unlocked.organization is None
    assert unlocked.account == account and unlocked.address == "192.0.2.200"
    invited = one("user.invited")  # the customer's first user, invited by the unlock
    assert invited.object_id == str(User.objects.get(email="it@erin.example").pk)
    assert invited.account == account and invited.address == "192.0.2.200"
    assert invited.data == {"email": "it@erin.example", "role": "admin"}

    expansion = order_body(
        "PO-A2",
        ERIN,
        lines=[
            {
                "product": "CALL_RECORDING",
                "quantity": 5,
                "kind": "perpetual",
                "care_ends_at": in_days(365),
            }
        ],
    )
    assert erp.post(URL, expansion, format="json", REMOTE_ADDR=PARTNER_ADDRESS).status_code == 201
    expanded = one("license.expanded")
    added = License.objects.get(order_lines__order__reference="PO-A2")
    assert expanded.object_id == str(added.pk) and expanded.account == account
    assert expanded.actor_api_key == key and expanded.address == PARTNER_ADDRESS
    assert expanded.data == {"order": "PO-A2", "product": "CALL_RECORDING", "quantity": 5}

    sub = License.objects.get(account=account, kind="subscription")
    renewal = renewal_body("PO-A3", sub.pk, ERIN, ends_at=in_days(730))
    assert erp.post(URL, renewal, format="json", REMOTE_ADDR=PARTNER_ADDRESS).status_code == 201
    renewed = one("license.renewed", object_id=str(sub.pk))
    assert renewed.actor_api_key == key and renewed.account == account
    assert renewed.address == PARTNER_ADDRESS and renewed.data["order"] == "PO-A3"

    client.force_login(cast.alice_admin)
    assert client.post(f"/api-keys/{key.pk}/revoke/", REMOTE_ADDR=PORTAL_ADDRESS).status_code == 302
    revoked = one("api_key.revoked", object_id=str(key.pk))
    assert revoked.actor_user == cast.alice_admin and revoked.address == PORTAL_ADDRESS
    assert revoked.data == {"prefix": key.prefix}

    assert_no_raw_secret(raw_key, first_secret, second_secret)


@pytest.mark.parametrize(
    ("who", "invitee", "has_account"),
    [("alice_admin", "new@alice.example", False), ("carol_admin", "new@carol.example", True)],
)
def test_inviting_a_user_writes_an_event(cast, client, who, invitee, has_account):
    inviter = getattr(cast, who)
    client.force_login(inviter)

    response = client.post(
        "/team/", {"email": invitee, "role": "member"}, REMOTE_ADDR=PORTAL_ADDRESS
    )

    assert response.status_code == 302
    event = one("user.invited")
    assert event.object_id == str(User.objects.get(email=invitee).pk)
    assert event.actor_user == inviter and event.actor_label == inviter.email
    assert event.organization == inviter.organization and event.address == PORTAL_ADDRESS
    expected = inviter.organization.smart_account if has_account else None
    assert event.account == expected
    assert event.data == {"email": invitee, "role": "member"}


def test_server_services_write_their_events(cast, carol_account, device):
    LicenseFactory(account=carol_account, product=cast.recording, kind="perpetual", quantity=50)
    key, raw_key = create_api_key(
        organization=cast.alice_reseller, name="ERP", actor=Actor.system("tests")
    )
    erp = APIClient()
    erp.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    label = f"API key {key.prefix}… (ERP)"

    def api(method: str, path: str, body: dict | None = None):
        response = getattr(erp, method)(
            f"/api/v1/{path}", body, format="json", REMOTE_ADDR=PARTNER_ADDRESS
        )
        assert response.status_code in (200, 201), response.content
        return response.json()

    server_id = api("post", f"accounts/{carol_account.pk}/servers", {"name": "pbx-a"})["id"]
    first_token = api("put", f"servers/{server_id}/assignments/CALL_RECORDING", {"quantity": 5})[
        "token"
    ]
    second_token = api("post", f"servers/{server_id}/token")["token"]
    for action in ("server.created", "capacity.assigned", "token.minted", "token.regenerated"):
        event = one(action, object_id=server_id)
        assert event.actor_api_key == key and event.actor_label == label, action
        assert event.organization == cast.alice_reseller and event.account == carol_account
        assert event.address == PARTNER_ADDRESS
    assert one("capacity.assigned").data == {"product": "CALL_RECORDING", "from": 0, "to": 5}
    assert one("server.created").data == {"name": "pbx-a", "purpose": "production"}

    response = activate(device, second_token, REMOTE_ADDR=SERVER_ADDRESS)
    assert response.status_code == 201, response.content
    credential = response.json()["credential"]
    assert sync(device, credential, REMOTE_ADDR=SERVER_ADDRESS).status_code == 200
    assert (
        sync(device, credential, fingerprint="fp-clone", REMOTE_ADDR="192.0.2.99").status_code
        == 409
    )
    server_label = f"server pbx-a ({server_id})"
    for action, address in [
        ("server.activated", SERVER_ADDRESS),
        ("server.first_sync", SERVER_ADDRESS),
        ("server.fingerprint_mismatch", "192.0.2.99"),
    ]:
        event = one(action, object_id=server_id)
        assert event.actor_label == server_label and event.address == address, action
        assert event.actor_user is None and event.actor_api_key is None
        assert event.account == carol_account
    assert one("server.activated").data == {
        "mode": "online",
        "hostname": "pbx.local",
        "version": "W26",
    }

    api("delete", f"servers/{server_id}")
    deactivated = one("server.deactivated", object_id=server_id)
    assert deactivated.actor_api_key == key and deactivated.address == PARTNER_ADDRESS
    assert deactivated.data == {"previous_state": "active", "freed": 5}

    offline_id = api("post", f"accounts/{carol_account.pk}/servers", {"name": "pbx-off"})["id"]
    offline_token = api("put", f"servers/{offline_id}/assignments/CALL_RECORDING", {"quantity": 3})[
        "token"
    ]
    request_file = {
        "token": offline_token,
        "fingerprint": "fp-off",
        "hostname": "off.local",
        "version": "W26",
        "nonce": "nonce-1",
    }
    api("post", f"servers/{offline_id}/offline-activation", request_file)
    offline = one("server.activated", object_id=offline_id)
    assert offline.data == {"mode": "offline", "hostname": "off.local"}
    assert offline.actor_api_key == key and offline.address == PARTNER_ADDRESS
    assert offline.account == carol_account

    assert_no_raw_secret(raw_key, first_token, second_token, offline_token, credential)


def test_the_daily_jobs_write_system_events(cast, carol_account, clock):
    renewing = subscription(carol_account, cast.console, at(days=1))
    ending = subscription(carol_account, cast.analytics, at(days=1), auto_renew=False)
    silent = ServerFactory(account=carol_account, name="silent", state="active", last_sync_at=START)
    clock.move_to(at(days=2))

    run_daily_jobs()

    for action, obj in [
        ("license.renewed", renewing),
        ("license.expired", ending),
        ("server.stale", silent),
    ]:
        event = one(action, object_id=str(obj.pk))
        assert event.actor_label == "daily jobs" and event.account == carol_account, action
        assert event.actor_user is None and event.address is None
        assert event.created_at == at(days=2)


def test_audit_events_are_read_only_in_the_admin(cast, carol_account, client):
    event = AuditEventFactory(action="server.created", actor_label="x", account=carol_account)
    client.force_login(cast.vendor_staff)

    listing = client.get("/admin/smartaccounts/auditevent/", {"action": "server.created"})
    assert listing.status_code == 200 and "server.created" in listing.content.decode()
    change = f"/admin/smartaccounts/auditevent/{event.pk}/change/"
    assert client.post(change, {"action": "edited"}).status_code == 403
    assert client.post(f"/admin/smartaccounts/auditevent/{event.pk}/delete/").status_code == 403
    event.refresh_from_db()
    assert event.action == "server.created"
