from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from notifications import services as outbox
from notifications.models import OutboundEmail
from orders.models import Order

from ..orders.payloads import URL, order_body

pytestmark = pytest.mark.django_db


def place(client, reference="PO-OUT"):
    response = client.post(URL, order_body(reference), format="json")
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["id"])


def test_a_row_is_sent_once_however_often_it_is_delivered(cast, alice_api):
    order = place(alice_api)  # on_commit does not run here: the row waits
    row = OutboundEmail.objects.get(object_id=str(order.pk))

    assert outbox.deliver_email(row_id=str(row.pk)) is True
    assert outbox.deliver_email(row_id=str(row.pk)) is False  # a duplicate delivery

    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 1
    assert row.subject == mail.outbox[0].subject


def test_a_failed_send_keeps_the_row_and_rolls_back_the_link(cast, alice_api, monkeypatch):
    order = place(alice_api)
    row = OutboundEmail.objects.get(object_id=str(order.pk))

    def smtp_down(self, fail_silently=False):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailMultiAlternatives, "send", smtp_down)
    with pytest.raises(ConnectionRefusedError):
        outbox.deliver_email(row_id=str(row.pk))

    row.refresh_from_db()
    order.refresh_from_db()
    assert row.sent_at is None
    assert row.attempts == 1 and "smtp down" in row.last_error
    assert order.unlock_secret_hash == ""  # the link minted for the failed send is gone

    monkeypatch.undo()
    assert outbox.deliver_email(row_id=str(row.pk)) is True
    assert len(mail.outbox) == 1


def test_broker_down_at_commit_loses_nothing_and_the_sweep_sends_once(
    cast, alice_api, monkeypatch, django_capture_on_commit_callbacks
):
    from notifications import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis down")

    monkeypatch.setattr(tasks.send_email, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(URL, order_body("PO-DOWN"), format="json")

    assert response.status_code == 201  # the order does not depend on the broker
    row = OutboundEmail.objects.get()
    assert row.sent_at is None and len(mail.outbox) == 0

    # Too fresh for the sweep: its task may still be on the way.
    assert outbox.sweep_outbox() == 0
    later = timezone.now() + timedelta(minutes=5)
    assert outbox.sweep_outbox(now=later) == 1
    assert outbox.sweep_outbox(now=later) == 0

    assert len(mail.outbox) == 1
    assert "PO-DOWN" in mail.outbox[0].subject


def test_a_row_for_a_deleted_object_is_closed_without_sending(db):
    row = OutboundEmail.objects.create(
        kind="order", object_id="00000000-0000-0000-0000-000000000000", to=["x@y.example"]
    )

    assert outbox.deliver_email(row_id=str(row.pk)) is False
    row.refresh_from_db()
    assert row.sent_at is not None and len(mail.outbox) == 0
