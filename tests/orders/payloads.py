"""Order request bodies as a partner's system sends them, and an order placed with them."""

import re
from datetime import timedelta

from django.utils import timezone

from notifications.models import OutboundEmail
from orders.models import Order

URL = "/api/v1/orders"
CAROL = {"name": "Carol", "email": "it@carol.example"}


def in_days(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def order_body(reference: str = "PO-1", customer: dict | None = None, **overrides) -> dict:
    body = {
        "reference": reference,
        "customer": customer
        or {"name": "Erin GmbH", "email": "it@erin.example", "external_id": "ERIN-1"},
        "lines": [
            {
                "product": "CALL_RECORDING",
                "quantity": 50,
                "kind": "perpetual",
                "care_ends_at": in_days(365),
            },
            {
                "product": "ATTENDANT_CONSOLE",
                "quantity": 5,
                "kind": "subscription",
                "ends_at": in_days(365),
            },
        ],
    }
    body.update(overrides)
    return body


def renewal_body(reference: str, license_id: object, customer: dict | None = None, **dates) -> dict:
    return {
        "reference": reference,
        "customer": customer or CAROL,
        "lines": [{"renews": str(license_id), **dates}],
    }


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def place(client, reference: str) -> tuple[Order, OutboundEmail]:
    """An order placed through the API by `client`'s partner, and the outbox row of its e-mail."""
    response = client.post(URL, order_body(reference), format="json")
    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    return order, OutboundEmail.objects.get(kind="order", object_id=str(order.pk))


def unlock_secret(message) -> str:
    """The secret of the unlock link in an order e-mail."""
    return re.search(r"/unlock/([^/\s]+)/", message.body).group(1)
