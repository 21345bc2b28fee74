"""The account history reads as sentences (issue 9, item 10): who by name for the reader's own
organization and by organization otherwise, what happened in words with the object's name; a
customer never sees its partner's e-mail events or vendor staff addresses; the CSV is flat and
inert (S25)."""

import csv
import io

import pytest
from django.utils import timezone

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License
from smartaccounts.renewals import issue_evaluation
from tokens import services

from ..conftest import api_client_for
from ..factories import AuditEventFactory, LicenseFactory
from ..orders.payloads import URL, order_body

pytestmark = pytest.mark.django_db

CAROL = {"name": "Carol Corp", "email": "it@carol.example"}
RESELLER_ADDRESS = "198.51.100.4"
STAFF_ADDRESS = "10.9.8.7"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+SUM(1,2)", "-2+3", "@cmd", "\tTAB"]


def csv_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def story(cast, carol_account, django_capture_on_commit_callbacks):
    """An order unlocked, a server given capacity, and a vendor evaluation, in Carol's account."""
    alice = api_client_for(cast.alice_reseller)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(URL, order_body("PO-42", CAROL), format="json")
    assert response.status_code == 201, response.content
    order_id = response.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.post(f"{URL}/{order_id}/unlock").status_code == 200
    member = Actor.for_user(cast.alice_member, RESELLER_ADDRESS)
    server = services.create_server(
        account=carol_account, name="PBX-1", purpose="production", actor=member
    )
    services.assign_capacity(server=server, product=cast.recording, quantity=5, actor=member)
    issue_evaluation(
        account=carol_account,
        product=cast.analytics,
        quantity=3,
        actor=Actor.for_user(cast.vendor_staff, STAFF_ADDRESS),
    )
    assert AuditEvent.objects.filter(account=carol_account, action="order.email_sent").exists()
    return f"/accounts/{carol_account.pk}/history/"


def test_the_customer_reads_what_happened_in_words(cast, client, story):
    client.force_login(cast.carol_admin)

    page = client.get(story).content.decode()

    assert "Assigned 5 channels of Call Recording to PBX-1" in page
    assert "Order PO-42 unlocked" in page
    assert "Server PBX-1 created (production)" in page
    assert "Delivered 50 channels of Call Recording from order PO-42" in page
    assert "Evaluation of 3 users of Call Analytics until" in page
    assert "Alice Reseller" in page and "Vendor support" in page
    for raw in ("capacity.assigned", "order.unlocked", "smartaccounts.license", "tokens.server"):
        assert raw not in page.replace(f'value="{raw}"', "")
    server_id = str(AuditEvent.objects.get(action="server.created").object_id)
    assert server_id not in page
    assert timezone.now().strftime("%Y-%m-%d %H:%M UTC") in page


def test_the_customer_sees_no_partner_email_events_nor_staff_addresses(cast, client, story):
    client.force_login(cast.carol_admin)

    response = client.get(story)
    page = response.content.decode()
    rows = csv_of(client.get(story, {"format": "csv"}))

    assert "order.email_sent" not in [code for code, _ in response.context["actions"]]
    assert "E-mail for" not in page and "orders@alice.example" not in page
    assert "staff@vendor.example" not in page and STAFF_ADDRESS not in page
    assert "member@alice.example" not in page and RESELLER_ADDRESS not in page
    assert not [r for r in rows if r["action"].startswith("order.email")]
    text = repr(rows)
    for secret in ("staff@vendor.example", STAFF_ADDRESS, "orders@alice.example"):
        assert secret not in text
    (evaluation,) = [r for r in rows if r["action"] == "license.evaluation_issued"]
    assert evaluation["actor"] == "Vendor support"
    (assigned,) = [r for r in rows if r["action"] == "capacity.assigned"]
    assert (assigned["actor"], assigned["address"]) == ("Alice Reseller", "")


def test_the_reseller_reads_its_own_people_by_name_and_its_emails(cast, client, story):
    client.force_login(cast.alice_admin)

    page = client.get(story).content.decode()
    rows = csv_of(client.get(story, {"format": "csv"}))

    assert "member@alice.example" in page and RESELLER_ADDRESS in page
    assert "E-mail for Order PO-42 sent to orders@alice.example" in page
    assert "Vendor support" in page and "staff@vendor.example" not in page
    (assigned,) = [r for r in rows if r["action"] == "capacity.assigned"]
    assert assigned == {
        **assigned,
        "actor": "member@alice.example",
        "action_in_words": "Assigned 5 channels of Call Recording to PBX-1",
        "object_type": "tokens.server",
        "object_name": "PBX-1",
        "address": RESELLER_ADDRESS,
        "detail_product": "CALL_RECORDING",
        "detail_from": "0",
        "detail_to": "5",
    }
    (sent,) = [r for r in rows if r["action"] == "order.email_sent"]
    assert sent["detail_to"] == "orders@alice.example"
    assert sent["more_details"] == "with_unlock_link: yes"


def test_the_csv_has_flat_columns_and_no_cell_a_spreadsheet_would_run(
    cast, carol_account, client, story
):
    member = Actor.for_user(cast.alice_member, RESELLER_ADDRESS)
    server = services.create_server(
        account=carol_account, name=FORMULAS[1], purpose="test", actor=member
    )
    services.rename_server(server=server, name=FORMULAS[0], actor=member)
    LicenseFactory(account=carol_account, product=cast.console)
    AuditEventFactory(
        action="server.renamed",
        actor_label="tests",
        account=carol_account,
        data={"from": FORMULAS[2], "to": FORMULAS[3], "note": FORMULAS[4]},
    )
    client.force_login(cast.carol_admin)

    response = client.get(story, {"format": "csv"})
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))

    header = rows[0]
    assert header[:7] == [
        "time_utc",
        "actor",
        "action",
        "action_in_words",
        "object_type",
        "object_id",
        "object_name",
    ]
    assert all(column.startswith("detail_") for column in header[8:-1])
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r", "{", "["))]
    assert '\'=HYPERLINK(""http://evil.example"",""x"")' in text  # quoted as text
    by_column = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    renamed = next(r for r in by_column if r["detail_from"] == "'+SUM(1,2)")
    assert renamed["detail_to"] == "'" + FORMULAS[0]
    assert renamed["object_name"] == "'" + FORMULAS[0]
    raw = next(r for r in by_column if r["detail_from"] == "'-2+3")
    assert (raw["detail_to"], raw["more_details"]) == ("'@cmd", "note: \tTAB")


def test_history_words_for_every_kind_of_event_a_server_makes(cast, carol_account, client):
    """Events without a person behind them: the server itself, the daily job, an unlock link."""
    lic = LicenseFactory(account=carol_account, product=cast.recording, quantity=10)
    system = Actor.system("daily jobs")
    server = services.create_server(
        account=carol_account, name="PBX-9", purpose="production", actor=system
    )
    for action, data in [
        ("server.first_sync", {"version": "W26"}),
        ("server.stale", {"last_sync_at": "2031-03-01T10:00:00+00:00"}),
        ("server.fingerprint_mismatch", {"expected": "a" * 16, "received": "b" * 16}),
    ]:
        AuditEventFactory(
            action=action,
            actor_label=f"server PBX-9 ({server.pk})",
            account=carol_account,
            object_type="tokens.server",
            object_id=str(server.pk),
            data=data,
        )
    AuditEventFactory(
        action="license.expired",
        actor_label="daily jobs",
        account=carol_account,
        object_type="smartaccounts.license",
        object_id=str(lic.pk),
        data={"ended_at": "2031-03-02T00:00:00+00:00"},
    )
    AuditEventFactory(
        action="something.new_happened", actor_label="daily jobs", account=carol_account
    )
    client.force_login(cast.carol_admin)

    entries = client.get(f"/accounts/{carol_account.pk}/history/").context["entries"]

    said = {e.event.action: (e.actor, e.action) for e in entries}
    assert said["server.first_sync"] == (
        "Server PBX-9",
        "PBX-9 synced for the first time (version W26)",
    )
    assert said["server.stale"][1] == "PBX-9 stopped syncing (last sync 2031-03-01)"
    assert said["server.fingerprint_mismatch"][1].startswith("Refused a sync for PBX-9")
    assert said["license.expired"] == (
        "Cloud Licensing (automatic)",
        "Call Recording (10 channels, Perpetual) expired on 2031-03-02",
    )
    assert said["something.new_happened"][1] == "Something new happened"
    assert str(server.pk) not in repr(said)
    assert License.objects.filter(pk=lic.pk).exists()


def test_an_old_unchanged_save_reads_as_kept_not_lowered(cast, client, story, carol_account):
    server_event = AuditEvent.objects.get(account=carol_account, action="capacity.assigned")
    AuditEventFactory(
        account=carol_account,
        action="capacity.assigned",
        object_type=server_event.object_type,
        object_id=server_event.object_id,
        data={"product": "CALL_RECORDING", "from": 5, "to": 5},
    )
    client.force_login(cast.carol_admin)

    page = client.get(story).content.decode()

    assert "Kept Call Recording on PBX-1 at 5 channels" in page
    assert "Lowered Call Recording on PBX-1 from 5 to 5" not in page
