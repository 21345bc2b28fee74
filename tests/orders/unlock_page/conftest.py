"""The e-mail's unlock link `/unlock/<secret>/` (S8), re-sending it, and the portal's own
unlock and re-send buttons."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from orders.models import Order
from smartaccounts.models import License

from ...conftest import api_client_for
from ..payloads import URL, order_body

SITE = "https://licensing.example.test"
UNLOCK_LINK = re.compile(re.escape(SITE) + r"(/unlock/[^/\s\"<>]+/)")
INVITATION_LINK = re.compile(re.escape(SITE) + r"(/invitation/[^/\s\"<>]+/[^/\s\"<>]+/)")


def unlock_path(message: mail.EmailMessage) -> str:
    """The path of the unlock link in an order e-mail (the text and HTML parts agree)."""
    found = UNLOCK_LINK.findall(message.body)
    assert len(found) == 1, message.body
    assert found[0] in message.alternatives[0][0]
    return found[0]


@pytest.fixture
def place(cast, django_capture_on_commit_callbacks):
    """Place an order as Alice through the API; returns (order, unlock path from the e-mail)."""

    def _place(reference: str = "PO-U1", customer: dict | None = None) -> tuple[Order, str]:
        sent_before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client_for(cast.alice_reseller).post(
                URL, order_body(reference, customer), format="json"
            )
        assert response.status_code == 201, response.content
        assert len(mail.outbox) == sent_before + 1
        return Order.objects.get(pk=response.json()["id"]), unlock_path(mail.outbox[-1])

    return _place


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def post_with_csrf(client: Client, path: str, **extra):
    """GET the page (which sets the CSRF cookie), then POST the form with that token."""
    page = client.get(path, **extra)
    assert page.status_code == 200, page.content
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client.post(path, {"csrfmiddlewaretoken": token}, **extra)


def table_snapshot() -> tuple[list, list]:
    licenses = list(License.objects.order_by("pk").values())
    orders = list(Order.objects.order_by("pk").values())
    return licenses, orders


def license_states(order: Order) -> set[str]:
    return set(License.objects.filter(order_lines__order=order).values_list("state", flat=True))
