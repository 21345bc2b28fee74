"""Bad input at order intake gets a clear error and changes nothing (SECURITY.md S24): a line
break (or any control character) in a text that reaches an e-mail header, and terms beyond
2100 or already past, are refused with `400 validation_error` naming the field; no order, no
customer, no outbox row is written."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from notifications.models import OutboundEmail
from orders.errors import OrderError
from orders.intake import CustomerData, LineData, OrderData, place_order
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, Organization

from ..factories import LicenseFactory
from .payloads import URL, assert_problem, in_days, order_body, renewal_body

pytestmark = pytest.mark.django_db

ERIN = {"name": "Erin GmbH", "email": "it@erin.example", "external_id": "ERIN-1"}
YEAR_2101 = "2101-01-01T00:00:00Z"


def nothing_written(organizations_before: int) -> None:
    assert not Order.objects.exists()
    assert not License.objects.exists()
    assert not OutboundEmail.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="order.").exists()
    assert Organization.objects.count() == organizations_before
    assert mail.outbox == []


def post(api, body, capture):
    with capture(execute=True):
        return api.post(URL, body, format="json")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reference", "PO-1\r\nBcc: victim@example.org"),
        ("reference", "PO-1\n"),  # trailing: refused, not silently trimmed
        ("reference", "PO-\r1"),
        ("customer.name", "Erin GmbH\r\nBcc: victim@example.org"),
        ("customer.name", "Erin\nGmbH"),
        ("customer.name", "Erin\rGmbH"),
        ("customer.name", "Erin GmbH\u2028"),  # a Unicode line separator
        ("customer.name", "Erin\x00GmbH"),
        ("customer.name", "Erin\x1bGmbH"),
        ("customer.email", "it@erin.example\r\nBcc: victim@example.org"),
        ("customer.email", "it@erin.example\n"),
        ("customer.external_id", "ERIN-1\r\nX-Evil: 1"),
    ],
)
def test_a_control_character_in_a_header_bound_field_is_refused_and_nothing_is_written(
    cast, alice_api, django_capture_on_commit_callbacks, field, value
):
    organizations = Organization.objects.count()
    body = order_body("PO-1", dict(ERIN))
    if field == "reference":
        body["reference"] = value
    else:
        body["customer"][field.split(".", 1)[1]] = value

    response = post(alice_api, body, django_capture_on_commit_callbacks)

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"], problem
    assert field in problem["detail"]
    nothing_written(organizations)


def test_the_same_order_without_the_line_break_is_taken_and_mailed_once(
    cast, alice_api, django_capture_on_commit_callbacks
):
    response = post(alice_api, order_body("PO-1", dict(ERIN)), django_capture_on_commit_callbacks)

    assert response.status_code == 201, response.content
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject.startswith("Order PO-1 for Erin GmbH")


def test_the_service_refuses_a_line_break_from_any_front_door(cast):
    """Not only the API's serializer: the service itself refuses (admin, commands, tests)."""
    data = OrderData(
        reference="PO-SVC",
        customer=CustomerData(name="Erin\r\nGmbH", email="it@erin.example"),
        lines=[LineData(product="CALL_RECORDING", quantity=5, kind="perpetual")],
    )

    with pytest.raises(OrderError) as caught:
        place_order(placed_by=cast.alice_reseller, data=data, actor=Actor.system("tests"))

    assert caught.value.code == "validation_error"
    assert "customer.name" in caught.value.errors
    assert not Order.objects.exists()
    assert not OutboundEmail.objects.exists()


def test_an_order_taken_before_the_rule_still_gets_its_email_on_one_subject_line(
    cast, alice_api, django_capture_on_commit_callbacks
):
    """An order whose customer name holds a line break (accepted before intake refused it)
    is no longer stuck in the outbox: its subject is sent on one line."""
    response = post(alice_api, order_body("PO-OLD", dict(ERIN)), django_capture_on_commit_callbacks)
    order = Order.objects.select_related("customer").get(pk=response.json()["id"])
    Organization.objects.filter(pk=order.customer_id).update(name="Erin\r\nGmbH")
    mail.outbox = []
    portal = Client()
    portal.force_login(cast.alice_admin)

    with django_capture_on_commit_callbacks(execute=True):
        resent = portal.post(f"/orders/{order.pk}/resend/")

    assert resent.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Order PO-OLD for Erin GmbH — unlock your licenses"
    row = OutboundEmail.objects.filter(kind="order").order_by("-created_at").first()
    assert row.sent_at is not None and row.last_error == ""


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (
            {"product": "ATTENDANT_CONSOLE", "quantity": 5, "kind": "subscription",
             "ends_at": YEAR_2101},
            "lines.0.ends_at",
        ),
        (
            {"product": "ATTENDANT_CONSOLE", "quantity": 5, "kind": "subscription",
             "ends_at": "9999-12-31T00:00:00Z"},
            "lines.0.ends_at",
        ),
        (
            {"product": "ATTENDANT_CONSOLE", "quantity": 5, "kind": "subscription",
             "ends_at": "2100-06-01T00:00:00Z", "care_ends_at": YEAR_2101},
            "lines.0.care_ends_at",
        ),
        (
            {"product": "CALL_RECORDING", "quantity": 5, "kind": "perpetual",
             "care_ends_at": YEAR_2101},
            "lines.0.care_ends_at",
        ),
        (
            # Half a day before 2101 in UTC is 2101 already.
            {"product": "CALL_RECORDING", "quantity": 5, "kind": "perpetual",
             "care_ends_at": "2100-12-31T20:00:00-05:00"},
            "lines.0.care_ends_at",
        ),
        (
            {"product": "CALL_RECORDING", "quantity": 5, "kind": "perpetual",
             "care_ends_at": in_days(-1)},
            "lines.0.care_ends_at",
        ),
    ],
)  # fmt: skip
def test_a_term_beyond_2100_or_in_the_past_is_refused(
    cast, alice_api, django_capture_on_commit_callbacks, line, field
):
    organizations = Organization.objects.count()

    response = post(
        alice_api, order_body("PO-Y", dict(ERIN), lines=[line]), django_capture_on_commit_callbacks
    )

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"], problem
    nothing_written(organizations)


def test_a_term_in_2100_is_taken(cast, alice_api, django_capture_on_commit_callbacks):
    line = {
        "product": "ATTENDANT_CONSOLE",
        "quantity": 5,
        "kind": "subscription",
        "ends_at": "2100-12-31T23:59:59Z",
    }

    response = post(
        alice_api,
        order_body("PO-2100", dict(ERIN), lines=[line]),
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 201, response.content
    assert License.objects.get().ends_at == datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("field", ["ends_at", "care_ends_at"])
def test_a_renewal_beyond_2100_is_refused_and_the_license_keeps_its_dates(
    cast, alice_api, django_capture_on_commit_callbacks, field
):
    lic = LicenseFactory(
        account=cast.carol_customer.smart_account,
        product=cast.console,
        kind="subscription",
        ends_at=timezone.now() + timedelta(days=10),
        care_ends_at=timezone.now() + timedelta(days=10),
    )
    before = (lic.ends_at, lic.care_ends_at)

    response = post(
        alice_api,
        renewal_body("PO-REN-2101", lic.pk, **{field: YEAR_2101}),
        django_capture_on_commit_callbacks,
    )

    problem = assert_problem(response, 400, "validation_error")
    assert f"lines.0.{field}" in problem["errors"], problem
    lic.refresh_from_db()
    assert (lic.ends_at, lic.care_ends_at) == before
    assert not Order.objects.exists()
    assert not OutboundEmail.objects.exists()
