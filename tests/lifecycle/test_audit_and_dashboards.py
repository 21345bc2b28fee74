"""The audit trail (S17): an event per service with who, tenant, object and address, and no raw
secret anywhere; the account history page; the account and reseller dashboards against a known
fixture, their CSV exports and their query counts."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from lifecycle.services import run_daily_jobs
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import ApiKey, AuditEvent, License, Organization, SmartAccount, User
from smartaccounts.services import create_api_key
from tokens import services
from tokens.models import Server

from ..conftest import api_client_for
from ..factories import (
    AuditEventFactory,
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ServerFactory,
)
from ..orders.payloads import URL, in_days, order_body, renewal_body
from .conftest import START, activate, at, subscription, sync

pytestmark = pytest.mark.django_db

PARTNER_ADDRESS = "203.0.113.9"
PORTAL_ADDRESS = "198.51.100.4"
SERVER_ADDRESS = "192.0.2.10"
UNLOCK_LINK = re.compile(r"https://licensing\.example\.test(/unlock/([^/\s\"<>]+)/)")
ERIN = {"name": "Erin GmbH", "email": "it@erin.example", "external_id": "ERIN-1"}
# What a raw secret looks like, whatever the test: a stored one is a hash or a short prefix.
SECRET_SHAPES = [
    re.compile(r"clp_[A-Za-z0-9_-]{20,}"),
    re.compile(r"srv_[A-Za-z0-9_-]{20,}"),
    re.compile(r"act_[a-z2-7]{30,}"),
]


def one(action: str, **filters) -> AuditEvent:
    (event,) = AuditEvent.objects.filter(action=action, **filters)
    return event


def unlock_link(message: mail.EmailMessage) -> tuple[str, str]:
    """(path, secret) of the unlock link in an order e-mail."""
    (found,) = UNLOCK_LINK.findall(message.body)
    return found


def assert_no_raw_secret(*secrets: str) -> None:
    """S17: no audit row holds a secret handed out in the test, nor anything shaped like one."""
    assert all(len(secret) >= 30 for secret in secrets)
    rows = list(AuditEvent.objects.all())
    assert rows
    for event in rows:
        text = " ".join([json.dumps(event.data), event.actor_label, event.object_id])
        for secret in secrets:
            assert secret not in text, (event.action, text)
        for shape in SECRET_SHAPES:
            assert not shape.search(text), (event.action, text)


# --- Orders, API keys and invitations ----------------------------------------------------------


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


# --- Servers, tokens and activation ------------------------------------------------------------


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


# --- The account history -----------------------------------------------------------------------


def make_history(account: SmartAccount, renamed: int, by: User | None = None) -> None:
    """Three renewals early in March and `renamed` renames on 7 March, plus noise elsewhere."""
    for day in (1, 3, 5):
        AuditEventFactory(
            created_at=datetime(2031, 3, day, 12, tzinfo=UTC),
            action="license.renewed",
            actor_label="daily jobs",
            account=account,
            object_type="smartaccounts.license",
            object_id=f"lic-{day}",
            data={"source": "automatic", "ends_at": f"2032-03-0{day}T00:00:00+00:00"},
        )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            created_at=datetime(2031, 3, 7, 8, tzinfo=UTC) + timedelta(minutes=i),
            action="server.renamed",
            actor_label=by.email if by else "member@alice.example",
            actor_user=by,
            organization=by.organization if by else None,
            account=account,
            object_id=f"srv-{i}",
            address="198.51.100.4",
            data={"from": f"old-{i}", "to": f"pbx-{i}"},
        )
        for i in range(renamed)
    )


@pytest.fixture
def history(cast, carol_account, dave_account):
    make_history(carol_account, 52, by=cast.alice_member)
    make_history(dave_account, 2)  # another tenant's: never shown
    return f"/accounts/{carol_account.pk}/history/"


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_history_lists_the_accounts_events_newest_first_50_a_page(cast, client, history):
    client.force_login(cast.alice_member)

    first = client.get(history)
    second = client.get(history, {"page": 2})

    assert first.status_code == second.status_code == 200
    assert first.context["page"].paginator.count == 55
    shown = [e.event.object_id for e in first.context["entries"]] + [
        e.event.object_id for e in second.context["entries"]
    ]
    assert len(first.context["entries"]) == 50 and len(shown) == 55
    assert shown[0] == "srv-51" and shown[-3:] == ["lic-5", "lic-3", "lic-1"]
    assert first.context["actions"] == [
        ("license.renewed", "License renewed"),
        ("server.renamed", "Server renamed"),
    ]
    page = first.content.decode()
    assert "Server renamed from old-51 to pbx-51" in page and "198.51.100.4" in page
    assert "server.renamed" not in page.replace('value="server.renamed"', "")
    assert "2031-03-07 08:51 UTC" in page
    assert "Page 1 of 2" in page
    last = second.content.decode()
    assert "renewed automatically until 2032-03-01" in last
    assert "Cloud Licensing (automatic)" in last


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "license.renewed"}, ["lic-5", "lic-3", "lic-1"]),
        ({"action": "license"}, ["lic-5", "lic-3", "lic-1"]),
        ({"since": "2031-03-02", "until": "2031-03-05"}, ["lic-5", "lic-3"]),
        ({"since": "2031-03-06", "action": "license.renewed"}, []),
        ({"until": "2031-03-01"}, ["lic-1"]),
        ({"since": "not-a-date", "action": "license"}, ["lic-5", "lic-3", "lic-1"]),
    ],
)
def test_history_filters_by_type_and_date(cast, client, history, query, expected):
    client.force_login(cast.alice_member)

    response = client.get(history, query)

    assert [e.event.object_id for e in response.context["entries"]] == expected
    assert csv_rows(client.get(history, {**query, "format": "csv"}))[1:] == [
        row for row in csv_rows(client.get(history, {"format": "csv"}))[1:] if row[5] in expected
    ]


def test_history_exports_csv_with_flat_columns_and_one_line_per_event(cast, client, history):
    client.force_login(cast.alice_member)

    rows = csv_rows(client.get(history, {"format": "csv"}))

    header = rows[0]
    assert header[:8] == [
        "time_utc",
        "actor",
        "action",
        "action_in_words",
        "object_type",
        "object_id",
        "object_name",
        "address",
    ]
    assert "detail_from" in header and "detail_to" in header and header[-1] == "more_details"
    assert len(rows) == 1 + 55
    first = dict(zip(header, rows[1], strict=True))
    assert first["time_utc"] == "2031-03-07T08:51:00+00:00"
    assert first["actor"] == "member@alice.example"
    assert first["action"] == "server.renamed"
    assert first["action_in_words"] == "Server renamed from old-51 to pbx-51"
    assert (first["object_id"], first["address"]) == ("srv-51", "198.51.100.4")
    assert (first["detail_from"], first["detail_to"], first["more_details"]) == (
        "old-51",
        "pbx-51",
        "",
    )
    last = dict(zip(header, rows[-1], strict=True))
    assert (last["action"], last["actor"], last["object_type"], last["object_id"]) == (
        "license.renewed",
        "Cloud Licensing (automatic)",
        "smartaccounts.license",
        "lic-1",
    )
    assert last["address"] == ""  # no address for the system
    assert last["more_details"] == "source: automatic"
    assert not any(cell.startswith("{") for row in rows for cell in row)  # no raw JSON
    filtered = csv_rows(client.get(history, {"format": "csv", "action": "server"}))
    assert len(filtered) == 1 + 52


def test_the_customer_reads_partner_people_as_their_organization(cast, client, history):
    client.force_login(cast.carol_admin)

    page = client.get(history).content.decode()
    rows = csv_rows(client.get(history, {"format": "csv"}))

    assert "Alice Reseller" in page and "member@alice.example" not in page
    assert "198.51.100.4" not in page  # another organization's addresses are not shown
    assert {row[1] for row in rows[1:53]} == {"Alice Reseller"}
    assert {row[7] for row in rows[1:]} == {""}


def test_history_of_another_tenant_is_404_and_it_is_read_only(cast, client, history):
    client.force_login(cast.bob_admin)
    assert client.get(history).status_code == 404
    assert client.get(history, {"format": "csv"}).status_code == 404
    client.force_login(cast.alice_member)
    assert client.post(history).status_code == 405
    assert client.get("/accounts/not-a-uuid/history/").status_code == 404
    assert Client().get(history).status_code == 302  # to the login


# --- The account dashboard ---------------------------------------------------------------------


def server_holding(account, name, state, usage, *holdings, **fields) -> Server:
    """A server holding capacity (assigned while pending), then put in `state`."""
    system = Actor.system("tests")
    server = services.create_server(account=account, name=name, purpose="production", actor=system)
    for product, quantity in holdings:
        services.assign_capacity(server=server, product=product, quantity=quantity, actor=system)
    if state == "deactivated":
        services.deactivate_server(server=server, actor=system)
    Server.objects.filter(pk=server.pk).update(
        state=state, reported_usage=usage, last_sync_at=fields.pop("last_sync_at", START), **fields
    )
    return server


@pytest.fixture
def known_account(cast, carol_account, dave_account):
    """Carol's account as the dashboard should read it; Dave's beside it must not leak in."""
    rec = cast.recording
    LicenseFactory(account=carol_account, product=rec, quantity=50, care_ends_at=at(days=200))
    console = subscription(carol_account, cast.console, at(days=60))
    subscription(carol_account, cast.analytics, at(days=-10), state="expired", auto_renew=False)
    LicenseFactory(account=carol_account, product=cast.billing, quantity=20, care_ends_at=at(-5))
    locked = api_client_for(cast.alice_reseller).post(
        URL,
        order_body("PO-LOCKED", {"name": "Carol Corp", "email": "it@carol.example"}),
        format="json",
    )
    assert locked.status_code == 201
    usage = {"CALL_RECORDING": 12, "ATTENDANT_CONSOLE": 3}
    server_holding(carol_account, "s1", "active", usage, (rec, 20), (cast.console, 4))
    clone = server_holding(
        carol_account, "s2", "active", {"CALL_RECORDING": 7}, (rec, 10), clone_suspected_at=START
    )
    stale = server_holding(
        carol_account, "s3", "stale", {"CALL_RECORDING": 5}, (rec, 5), last_sync_at=at(-3)
    )
    server_holding(carol_account, "s4", "offline", {"CALL_BILLING": 6}, (cast.billing, 8))
    server_holding(carol_account, "s5", "pending", {}, (rec, 2))
    server_holding(carol_account, "s6", "deactivated", {"CALL_RECORDING": 99}, (rec, 1))
    LicenseFactory(account=dave_account, product=rec, quantity=500)
    server_holding(dave_account, "dave-1", "stale", {"CALL_RECORDING": 40}, (rec, 40))
    return {
        "console": console,
        "clone": clone,
        "stale": stale,
        "order": Order.objects.get(reference="PO-LOCKED"),
    }


def test_the_account_dashboard_reads_the_known_fixture(cast, carol_account, client, known_account):
    client.force_login(cast.alice_member)

    response = client.get(f"/accounts/{carol_account.pk}/overview/")

    assert response.status_code == 200
    o = response.context["overview"]
    assert o.servers_by_state == {
        "active": 2,
        "stale": 1,
        "offline": 1,
        "pending": 1,
        "deactivated": 1,
    }
    capacity = {
        line.pool.product.code: (line.pool.total, line.pool.assigned, line.in_use, line.pool.locked)
        for line in o.capacity
    }
    assert capacity == {
        "ATTENDANT_CONSOLE": (10, 4, 3, 5),
        "CALL_ANALYTICS": (0, 0, 0, 0),
        "CALL_BILLING": (20, 8, 6, 0),
        "CALL_RECORDING": (50, 37, 24, 50),
    }
    assert dict(o.care) == {"active": 1, "expiring": 1, "expired": 1}
    assert o.stale_servers == [known_account["stale"]]
    assert o.clones == [known_account["clone"]]
    assert o.locked_orders == [known_account["order"]]
    assert o.ending == [known_account["console"]]
    assert o.attention_count == 4
    page = response.content.decode()
    assert 'hx-get="/accounts/' in page and 'hx-trigger="every 30s"' in page
    assert re.search(
        r"<td>Call Recording</td>\s*<td class=\"num\">50 channels</td>\s*"
        r"<td class=\"num\">37</td>\s*<td class=\"num\">24</td>",
        page,
    )
    assert '<p class="big">4</p>' in page
    assert "PO-LOCKED" in page and "s3" in page and "dave-1" not in page


def test_the_htmx_poll_gets_the_live_fragment_only(cast, carol_account, client, known_account):
    client.force_login(cast.carol_viewer)

    response = client.get(f"/accounts/{carol_account.pk}/overview/", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "lifecycle/_overview_live.html"
    fragment = response.content.decode()
    assert "<html" not in fragment and "hx-get" not in fragment
    assert '<p class="big">4</p>' in fragment and "Updated" in fragment


def test_the_account_dashboard_of_another_tenant_is_404_and_read_only(cast, carol_account, client):
    url = f"/accounts/{carol_account.pk}/overview/"
    client.force_login(cast.bob_admin)
    assert client.get(url).status_code == 404
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404
    client.force_login(cast.alice_member)
    assert client.post(url).status_code == 405
    assert client.get("/accounts/00000000-0000-0000-0000-000000000000/overview/").status_code == 404


# --- The reseller dashboard --------------------------------------------------------------------


@pytest.fixture
def opportunities(cast, carol_account, dave_account):
    """Alice's customers Carol and Erin with terms and care ending at known days from START."""
    erin = CustomerFactory(name="Erin GmbH", email="it@erin.example")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    erin_account = erin.smart_account
    made = {
        "erin-console": subscription(erin_account, cast.console, at(days=10), auto_renew=False),
        "carol-console": subscription(carol_account, cast.console, at(days=30)),
        "carol-recording": LicenseFactory(
            account=carol_account, product=cast.recording, care_ends_at=at(days=60)
        ),
        "erin-recording": LicenseFactory(
            account=erin_account, product=cast.recording, care_ends_at=at(days=75)
        ),
        "carol-billing": LicenseFactory(
            account=carol_account, product=cast.billing, care_ends_at=at(days=89)
        ),
    }
    # Not opportunities: too far, expired, locked, or another reseller's customer.
    subscription(carol_account, cast.analytics, at(days=120))
    subscription(carol_account, cast.analytics, at(days=-1), state="expired")
    LicenseFactory(account=carol_account, product=cast.console, state="locked", care_ends_at=at(20))
    subscription(dave_account, cast.console, at(days=20))
    server_holding(carol_account, "carol-stale", "stale", {}, last_sync_at=at(-2))
    server_holding(erin_account, "erin-clone", "active", {}, clone_suspected_at=START)
    server_holding(carol_account, "carol-fine", "active", {})
    server_holding(dave_account, "dave-stale", "stale", {})
    for api, reference, customer in [
        (api_client_for(cast.alice_reseller), "PO-ALICE", ERIN),
        (api_client_for(cast.bob_reseller), "PO-BOB", {"name": "Dave", "email": "it@dave.example"}),
    ]:
        assert api.post(URL, order_body(reference, customer), format="json").status_code == 201
    return made


def names(page) -> list[str]:
    keys = {"Carol Corp": "carol", "Erin GmbH": "erin"}
    products = {
        "Attendant Console": "console",
        "Call Recording": "recording",
        "Call Billing": "billing",
    }
    return [f"{keys[lic.account.name]}-{products[lic.product.name]}" for lic in page]


BY_END = "erin-console carol-console carol-recording erin-recording carol-billing"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("ends", BY_END),
        ("-ends", " ".join(reversed(BY_END.split()))),
        ("customer", "carol-console carol-recording carol-billing erin-console erin-recording"),
        ("-customer", "erin-console erin-recording carol-console carol-recording carol-billing"),
        ("product", "erin-console carol-console carol-billing carol-recording erin-recording"),
        ("-product", "carol-recording erin-recording carol-billing erin-console carol-console"),
        ("nonsense", BY_END),
    ],
)
def test_renewals_in_the_next_90_days_across_all_customers_sorted(
    cast, client, opportunities, sort, expected
):
    client.force_login(cast.alice_member)

    response = client.get("/renewals/", {"sort": sort})

    assert response.status_code == 200
    assert names(response.context["page"]) == expected.split()
    rows = csv_rows(client.get("/renewals/", {"sort": sort, "format": "csv"}))
    assert [row[-1] for row in rows[1:]] == [str(opportunities[k].pk) for k in expected.split()]


def test_the_renewals_csv_matches_the_rows(cast, client, opportunities):
    client.force_login(cast.alice_member)

    rows = csv_rows(client.get("/renewals/", {"format": "csv"}))

    assert rows[0] == [
        "customer",
        "product",
        "kind",
        "quantity",
        "term_ends_at",
        "care_ends_at",
        "next_end",
        "auto_renew",
        "license_id",
    ]
    erin_console = opportunities["erin-console"]
    assert rows[1] == [
        "Erin GmbH",
        "ATTENDANT_CONSOLE",
        "subscription",
        "10",
        "2031-03-20T06:00:00+00:00",
        "2031-03-20T06:00:00+00:00",
        "2031-03-20T06:00:00+00:00",
        "False",
        str(erin_console.pk),
    ]
    assert rows[3] == [
        "Carol Corp",
        "CALL_RECORDING",
        "perpetual",
        "10",
        "",
        "2031-05-09T06:00:00+00:00",
        "2031-05-09T06:00:00+00:00",
        "",
        str(opportunities["carol-recording"].pk),
    ]
    assert [row[6][:10] for row in rows[1:]] == [
        "2031-03-20",
        "2031-04-09",
        "2031-05-09",
        "2031-05-24",
        "2031-06-07",
    ]


def test_the_renewals_page_shows_stale_servers_and_locked_orders(cast, client, opportunities):
    client.force_login(cast.alice_member)

    response = client.get("/renewals/")

    assert [s.name for s in response.context["stale"]] == [
        "carol-stale",
        "erin-clone",
    ]  # longest silent first
    assert [o.reference for o in response.context["locked"]] == ["PO-ALICE"]
    page = response.content.decode()
    assert "possible clone" in page and "renewal off" in page and "renews itself" in page
    assert "dave-stale" not in page and "PO-BOB" not in page and "Dave" not in page


def test_bob_sees_none_of_alices_and_customers_get_404(cast, client, opportunities):
    client.force_login(cast.bob_admin)
    response = client.get("/renewals/")
    assert [lic.account.name for lic in response.context["page"]] == ["Dave Inc"]
    assert [s.name for s in response.context["stale"]] == ["dave-stale"]
    assert [o.reference for o in response.context["locked"]] == ["PO-BOB"]
    rows = csv_rows(client.get("/renewals/", {"format": "csv"}))
    assert [row[0] for row in rows[1:]] == ["Dave Inc"]

    for customer in (cast.carol_admin, cast.carol_viewer):
        client.force_login(customer)
        assert client.get("/renewals/").status_code == 404
        assert client.get("/renewals/", {"format": "csv"}).status_code == 404
    client.force_login(cast.alice_member)
    assert client.post("/renewals/").status_code == 405


# --- Constant query counts ---------------------------------------------------------------------


def grow(cast, reseller: Organization, customers: int) -> None:
    """More customers of `reseller`, each with licenses ending soon, servers and events."""
    for n in range(customers):
        customer = CustomerFactory(name=f"Grown {n}")
        PartnerLinkFactory(reseller=reseller, customer=customer)
        account = customer.smart_account
        subscription(account, cast.console, at(days=10 + n))
        LicenseFactory(account=account, product=cast.recording, care_ends_at=at(days=40 + n))
        server_holding(account, f"grown-{n}", "stale", {"CALL_RECORDING": 1})
        make_history(account, 3)


@pytest.mark.parametrize("size", ["small", "large"])
def test_the_dashboards_and_history_need_a_constant_number_of_queries(
    cast, carol_account, client, django_assert_max_num_queries, size
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=30))
    server_holding(carol_account, "one", "stale", {"CALL_RECORDING": 1})
    make_history(carol_account, 2)
    if size == "large":
        grow(cast, cast.alice_reseller, 12)
        for product in (cast.console, cast.analytics, cast.billing):
            subscription(carol_account, product, at(days=20))
        for n in range(15):
            server_holding(carol_account, f"more-{n}", "stale", {"CALL_RECORDING": n})
        make_history(carol_account, 60)
        for n in range(6):
            api_client_for(cast.alice_reseller).post(
                URL,
                order_body(f"PO-{n}", {"name": "Carol", "email": "it@carol.example"}),
                format="json",
            )
    client.force_login(cast.alice_member)
    account = f"/accounts/{carol_account.pk}"

    with django_assert_max_num_queries(15):
        assert client.get(f"{account}/overview/").status_code == 200
    with django_assert_max_num_queries(15):
        assert client.get(f"{account}/overview/", HTTP_HX_REQUEST="true").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/renewals/").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/renewals/", {"sort": "customer", "page": 2}).status_code == 200
    with django_assert_max_num_queries(4):
        assert len(csv_rows(client.get("/renewals/", {"format": "csv"}))) > 1
    with django_assert_max_num_queries(11):
        assert client.get(f"{account}/history/").status_code == 200
    with django_assert_max_num_queries(11):
        assert client.get(f"{account}/history/", {"action": "server", "page": 2}).status_code == 200
    with django_assert_max_num_queries(9):
        assert len(csv_rows(client.get(f"{account}/history/", {"format": "csv"}))) > 1
