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

from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, Organization, SmartAccount, User
from tokens import services
from tokens.models import Server

from ...conftest import api_client_for
from ...factories import (
    AuditEventFactory,
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
)
from ...orders.payloads import URL, order_body
from ..conftest import START, at, subscription

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
