"""POST /api/v1/orders: new customers, matching, expansions, renewals, validation, replays."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications.models import OutboundEmail
from orders.models import Order, OrderLine
from smartaccounts.models import AuditEvent, License, Organization, PartnerLink, SmartAccount

from ...factories import LicenseFactory
from ..payloads import URL, assert_problem, in_days, order_body, renewal_body

pytestmark = pytest.mark.django_db


def test_order_for_a_new_customer_creates_account_locked_licenses_and_one_email(
    cast, alice_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(URL, order_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "locked"
    assert body["reference"] == "PO-1"
    assert {lic["product"] for lic in body["licenses"]} == {"CALL_RECORDING", "ATTENDANT_CONSOLE"}
    assert all(lic["state"] == "locked" for lic in body["licenses"])

    customer = Organization.objects.get(name="Erin GmbH")
    assert customer.kind == "customer"
    account = SmartAccount.objects.get(organization=customer)
    assert PartnerLink.objects.filter(
        reseller=cast.alice_reseller, customer=customer, external_id="ERIN-1"
    ).exists()
    licenses = License.objects.filter(account=account)
    assert licenses.count() == 2
    assert set(licenses.values_list("state", flat=True)) == {"locked"}
    sub = licenses.get(kind="subscription")
    assert sub.care_ends_at == sub.ends_at  # care comes with a subscription
    assert sub.auto_renew is True
    assert OrderLine.objects.filter(order_id=body["id"], action="new").count() == 2

    assert OutboundEmail.objects.filter(object_id=body["id"], sent_at__isnull=False).count() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["orders@alice.example"]
    assert "PO-1" in message.subject
    assert "https://licensing.example.test/unlock/" in message.body
    assert "Call Recording" in message.body and "50 channels" in message.body
    html = message.alternatives[0][0]
    assert "https://licensing.example.test/unlock/" in html
    assert AuditEvent.objects.filter(action="order.received", object_id=body["id"]).exists()


def test_existing_customer_is_matched_by_external_id_then_email(cast, alice_api):
    carol_account = cast.carol_customer.smart_account
    by_external = alice_api.post(
        URL,
        order_body(
            "PO-EXT",
            customer={"name": "Renamed", "email": "other@x.example", "external_id": "ALICE-CAROL"},
        ),
        format="json",
    )
    by_email = alice_api.post(
        URL,
        order_body("PO-MAIL", customer={"name": "Carol", "email": "IT@carol.example"}),
        format="json",
    )

    assert by_external.status_code == 201 and by_email.status_code == 201
    assert by_external.json()["account"]["id"] == str(carol_account.pk)
    assert by_email.json()["account"]["id"] == str(carol_account.pk)
    assert Organization.objects.filter(kind="customer").count() == 2  # nobody new


def test_matching_never_reaches_another_resellers_customer(cast, alice_api):
    response = alice_api.post(
        URL,
        order_body("PO-DAVE", customer={"name": "Dave Inc", "email": "it@dave.example"}),
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["account"]["id"] != str(cast.dave_customer.smart_account.pk)
    assert License.objects.filter(account=cast.dave_customer.smart_account).count() == 0


def test_distributor_orders_for_its_reseller(
    cast, distributor_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = distributor_api.post(
            URL, order_body("D-1", reseller=str(cast.alice_reseller.pk)), format="json"
        )

    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    assert order.placed_by == cast.distributor
    assert order.reseller == cast.alice_reseller
    assert PartnerLink.objects.filter(
        reseller=cast.alice_reseller, customer=order.customer
    ).exists()
    assert mail.outbox[0].to == ["orders@dist.example"]


def test_distributor_cannot_name_another_distributors_reseller(cast, distributor_api):
    response = distributor_api.post(
        URL, order_body("D-2", reseller=str(cast.stray_reseller.pk)), format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert "reseller" in body["errors"]
    assert not Order.objects.exists()


def test_distributor_must_name_a_reseller(cast, distributor_api):
    assert_problem(
        distributor_api.post(URL, order_body("D-3"), format="json"), 400, "validation_error"
    )


def test_expansion_line_is_a_new_locked_license_for_an_owned_product(cast, alice_api):
    LicenseFactory(account=cast.carol_customer.smart_account, product=cast.recording)
    response = alice_api.post(
        URL,
        order_body(
            "PO-EXP",
            customer={"name": "Carol", "email": "it@carol.example", "external_id": "ALICE-CAROL"},
            lines=[{"product": "CALL_RECORDING", "quantity": 10, "kind": "perpetual"}],
        ),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["action"] == "expansion"
    assert (
        License.objects.filter(
            account=cast.carol_customer.smart_account, product=cast.recording
        ).count()
        == 2
    )


def test_renewal_line_extends_the_license_at_once_without_unlock(cast, alice_api):
    lic = LicenseFactory(
        account=cast.carol_customer.smart_account,
        product=cast.console,
        kind="subscription",
        ends_at=timezone.now() + timedelta(days=10),
        care_ends_at=timezone.now() + timedelta(days=10),
    )
    new_end = timezone.now() + timedelta(days=375)
    response = alice_api.post(
        URL,
        {
            "reference": "PO-REN",
            "customer": {"name": "Carol", "email": "it@carol.example"},
            "lines": [
                {
                    "renews": str(lic.pk),
                    "ends_at": new_end.isoformat(),
                    "care_ends_at": new_end.isoformat(),
                }
            ],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "unlocked"  # nothing to unlock in a renewal-only order
    assert body["lines"][0]["action"] == "renewal"
    lic.refresh_from_db()
    assert lic.ends_at == new_end and lic.care_ends_at == new_end
    assert lic.state == "active"
    assert AuditEvent.objects.filter(action="license.renewed", object_id=str(lic.pk)).exists()


def test_renewal_of_a_license_in_another_account_is_refused(cast, alice_api):
    daves = LicenseFactory(account=cast.dave_customer.smart_account, product=cast.recording)
    before = daves.care_ends_at
    response = alice_api.post(
        URL, renewal_body("PO-STEAL", daves.pk, care_ends_at=in_days(900)), format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert "lines.0.renews" in body["errors"]
    daves.refresh_from_db()
    assert daves.care_ends_at == before
    assert not Order.objects.exists()


def test_renewal_of_a_still_locked_license_is_order_locked(cast, alice_api):
    lic = LicenseFactory(
        account=cast.carol_customer.smart_account, product=cast.recording, state="locked"
    )
    response = alice_api.post(
        URL, renewal_body("PO-LOCKED", lic.pk, care_ends_at=in_days(900)), format="json"
    )

    assert_problem(response, 409, "order_locked")
    assert not Order.objects.exists()


def test_renewal_must_move_dates_forward(cast, alice_api):
    lic = LicenseFactory(account=cast.carol_customer.smart_account, product=cast.recording)
    response = alice_api.post(
        URL, renewal_body("PO-BACK", lic.pk, care_ends_at=in_days(5)), format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert "lines.0.care_ends_at" in body["errors"]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"product": "NO_SUCH_APP", "quantity": 1, "kind": "perpetual"}, "lines.0.product"),
        ({"product": "CALL_ANALYTICS", "quantity": 1, "kind": "perpetual"}, "lines.0.kind"),
        (
            {
                "product": "CALL_BILLING",
                "quantity": 1,
                "kind": "subscription",
                "ends_at": "2099-01-01T00:00:00Z",
            },
            "lines.0.kind",
        ),
        ({"product": "CALL_RECORDING", "quantity": 1, "kind": "subscription"}, "lines.0.ends_at"),
        (
            {
                "product": "CALL_RECORDING",
                "quantity": 1,
                "kind": "subscription",
                "ends_at": "2001-01-01T00:00:00Z",
            },
            "lines.0.ends_at",
        ),
        (
            {
                "product": "CALL_RECORDING",
                "quantity": 1,
                "kind": "perpetual",
                "ends_at": "2099-01-01T00:00:00Z",
            },
            "lines.0.ends_at",
        ),
        ({"product": "CALL_RECORDING", "quantity": 0, "kind": "perpetual"}, "lines.0.quantity"),
        ({"product": "CALL_RECORDING", "quantity": 1, "kind": "lifetime"}, "lines.0.kind"),
        ({"product": "CALL_RECORDING", "kind": "perpetual"}, "lines.0.quantity"),
        ({"renews": "not-a-uuid"}, "lines.0.renews"),
        ({"renews": str(uuid.UUID(int=1))}, "lines.0"),
    ],
)
def test_invalid_lines_are_validation_errors_and_write_nothing(cast, alice_api, line, field):
    response = alice_api.post(URL, order_body("PO-BAD", lines=[line]), format="json")

    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"], body
    assert not Order.objects.exists()
    assert not Organization.objects.filter(name="Erin GmbH").exists()
    assert not OutboundEmail.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {
            "reference": "X",
            "customer": {"name": "A", "email": "not-an-email"},
            "lines": [{"product": "CALL_RECORDING", "quantity": 1, "kind": "perpetual"}],
        },
        {"reference": "X", "customer": {"name": "A", "email": "a@a.example"}, "lines": []},
        {
            "reference": "",
            "customer": {"name": "A", "email": "a@a.example"},
            "lines": [{"product": "CALL_RECORDING", "quantity": 1, "kind": "perpetual"}],
        },
    ],
)
def test_malformed_bodies_are_validation_errors(cast, alice_api, body):
    assert_problem(alice_api.post(URL, body, format="json"), 400, "validation_error")
    assert not Order.objects.exists()


def test_one_bad_line_among_good_ones_writes_nothing(cast, alice_api):
    body = order_body("PO-HALF")
    body["lines"].append({"product": "NO_SUCH_APP", "quantity": 1, "kind": "perpetual"})

    assert_problem(alice_api.post(URL, body, format="json"), 400, "validation_error")
    assert not License.objects.exists()
    assert not Organization.objects.filter(name="Erin GmbH").exists()


def test_replay_with_the_same_body_returns_the_same_order_and_no_second_email(
    cast, alice_api, django_capture_on_commit_callbacks
):
    body = order_body("PO-R")
    with django_capture_on_commit_callbacks(execute=True):
        first = alice_api.post(URL, body, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        second = alice_api.post(URL, body, format="json")

    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 1
    assert License.objects.count() == 2
    assert OutboundEmail.objects.count() == 1
    assert len(mail.outbox) == 1


def test_same_reference_with_another_body_is_a_conflict_and_writes_nothing(cast, alice_api):
    alice_api.post(URL, order_body("PO-C"), format="json")
    other = order_body("PO-C")
    other["lines"][0]["quantity"] = 999

    body = assert_problem(alice_api.post(URL, other, format="json"), 409, "idempotency_conflict")
    assert Order.objects.count() == 1
    assert not License.objects.filter(quantity=999).exists()
    assert body["order_id"] == str(Order.objects.get().pk)


def test_references_are_per_partner(cast, alice_api, bob_api):
    assert alice_api.post(URL, order_body("SAME"), format="json").status_code == 201
    assert bob_api.post(URL, order_body("SAME"), format="json").status_code == 201
