"""Unlock links live UNLOCK_LINK_TTL_DAYS (default 180) from the date of their e-mail
(SECURITY.md S28). An expired link shows, on GET and POST alike, a page (410, the contract's
`unlock_link_expired`) saying how to get a new one, and changes nothing; re-sending the e-mail
from the portal makes a fresh link with a fresh lifetime."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from notifications.models import OutboundEmail
from notifications.services import deliver_email
from orders import services
from orders.errors import OrderError
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent

from ..conftest import api_client_for
from .payloads import URL, order_body
from .unlock_page.conftest import license_states, post_with_csrf, table_snapshot, unlock_path

pytestmark = pytest.mark.django_db

EXPIRED_STATUS = 410


@pytest.fixture
def place(cast, django_capture_on_commit_callbacks):
    """Place an order as Alice through the API; returns (order, unlock path from the e-mail)."""

    def _place(reference: str = "PO-TTL") -> tuple[Order, str]:
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client_for(cast.alice_reseller).post(
                URL, order_body(reference), format="json"
            )
        assert response.status_code == 201, response.content
        return Order.objects.get(pk=response.json()["id"]), unlock_path(mail.outbox[-1])

    return _place


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def resend_from_portal(cast, order: Order, capture) -> str:
    """Alice re-sends the order e-mail from the portal; returns the new link's path."""
    portal = Client()
    portal.force_login(cast.alice_admin)
    mail.outbox = []
    with capture(execute=True):
        response = portal.post(f"/orders/{order.pk}/resend/")
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    return unlock_path(mail.outbox[0])


def assert_expired_page(response, order: Order) -> None:
    assert response.status_code == EXPIRED_STATUS
    page = response.content.decode()
    assert "This unlock link has expired" in page
    # How to get a new one: re-send from the portal's Orders page, or ask the ordering partner.
    assert "Re-send the e-mail" in page and "<em>Orders</em>" in page
    assert order.reference in page and order.placed_by.name in page
    assert "Confirm unlock" not in page
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cache-Control"] == "no-store"


def test_the_email_says_until_when_the_link_works(cast, place):
    order, _ = place()
    order.refresh_from_db()
    row = OutboundEmail.objects.get(kind="order")
    message = mail.outbox[-1]

    assert order.unlock_link_issued_at == row.created_at
    expires = (row.created_at + timedelta(days=180)).date().isoformat()
    for text in (message.body, message.alternatives[0][0]):
        assert f"The link works until {expires} (180 days from this e-mail)" in text
        assert "does not expire" not in text
        assert "re-send this e-mail from" in text


def test_a_link_inside_its_lifetime_works(cast, place, csrf_client):
    order, path = place()

    with time_machine.travel(timezone.now() + timedelta(days=179), tick=False):
        done = post_with_csrf(csrf_client, path)

    assert done.status_code == 200
    assert Order.objects.get(pk=order.pk).state == "unlocked"
    assert license_states(order) == {"active"}


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_link_past_its_lifetime_shows_how_to_get_a_new_one_and_changes_nothing(
    cast, place, client, django_capture_on_commit_callbacks, method
):
    order, path = place()
    before = table_snapshot()
    audit_before = AuditEvent.objects.count()
    outbox_before = OutboundEmail.objects.count()

    with (
        time_machine.travel(timezone.now() + timedelta(days=181), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = getattr(client, method)(path)

    assert_expired_page(response, order)
    assert table_snapshot() == before
    assert license_states(order) == {"locked"}
    assert AuditEvent.objects.count() == audit_before
    assert OutboundEmail.objects.count() == outbox_before
    assert "_auth_user_id" not in client.session


def test_the_service_refuses_an_expired_link_under_its_row_lock(cast, place):
    """A link that expires between the page and the click: the unlock itself refuses."""
    order, path = place()
    secret = path.rstrip("/").rsplit("/", 1)[-1]

    with (
        time_machine.travel(timezone.now() + timedelta(days=181), tick=False),
        pytest.raises(OrderError) as caught,
    ):
        services.unlock_order_with_link(secret=secret, actor=Actor.anonymous(label="link"))

    assert caught.value.code == "unlock_link_expired"
    assert license_states(order) == {"locked"}


def test_an_expired_link_does_not_count_as_a_guess(cast, place, client):
    """The limiter on unknown links is for guessing; a genuine, expired link is not one."""
    _, path = place()

    with time_machine.travel(timezone.now() + timedelta(days=181), tick=False):
        answers = {client.get(path).status_code for _ in range(30)}

    assert answers == {EXPIRED_STATUS}


def test_resend_after_expiry_gives_a_fresh_link_with_a_fresh_lifetime(
    cast, place, csrf_client, client, django_capture_on_commit_callbacks
):
    order, old_path = place()
    later = timezone.now() + timedelta(days=200)

    with time_machine.travel(later, tick=False):
        assert client.get(old_path).status_code == EXPIRED_STATUS
        new_path = resend_from_portal(cast, order, django_capture_on_commit_callbacks)
        expires = (later + timedelta(days=180)).date().isoformat()
        assert f"The link works until {expires}" in mail.outbox[0].body
        assert new_path != old_path
        # The old link is retired outright, not merely expired.
        assert client.get(old_path).status_code == 404

    with time_machine.travel(later + timedelta(days=179), tick=False):
        confirm = client.get(new_path)
        assert confirm.status_code == 200
        assert f"keeps working until {expires}" in confirm.content.decode()
        done = post_with_csrf(csrf_client, new_path)

    assert done.status_code == 200
    assert Order.objects.get(pk=order.pk).state == "unlocked"
    assert license_states(order) == {"active"}


def test_a_repeated_delivery_carries_the_same_link_and_the_same_end(cast, place):
    order, path = place()
    order.refresh_from_db()
    issued = order.unlock_link_issued_at
    row = OutboundEmail.objects.get(kind="order")
    first = mail.outbox[-1].body

    # The sender died after handing the message over: the row goes out again, days later.
    OutboundEmail.objects.filter(pk=row.pk).update(sent_at=None, state="pending")
    with time_machine.travel(timezone.now() + timedelta(days=3), tick=False):
        assert deliver_email(row_id=str(row.pk))

    order.refresh_from_db()
    assert order.unlock_link_issued_at == issued
    assert mail.outbox[-1].body == first
    assert unlock_path(mail.outbox[-1]) == path


@override_settings(UNLOCK_LINK_TTL_DAYS=7)
def test_the_lifetime_is_a_setting(cast, place, client):
    order, path = place()
    assert "(7 days from this e-mail)" in mail.outbox[-1].body

    with time_machine.travel(timezone.now() + timedelta(days=6), tick=False):
        assert client.get(path).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1), tick=False):
        assert_expired_page(client.get(path), order)


def test_the_order_page_says_until_when_the_link_works(cast, place):
    order, _ = place()
    order.refresh_from_db()
    portal = Client()
    portal.force_login(cast.alice_admin)

    page = portal.get(f"/orders/{order.pk}/").content.decode()

    assert f"works until {order.unlock_link_expires_at.date().isoformat()}" in page
