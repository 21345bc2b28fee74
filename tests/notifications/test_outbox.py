import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from notifications import services as outbox
from notifications.models import OutboundEmail
from orders.models import Order
from orders.services import find_order_by_unlock_secret

from ..factories import OutboundEmailFactory
from ..orders.payloads import URL, order_body

pytestmark = pytest.mark.django_db


def unlock_link(message) -> str:
    return re.search(r"https?://\S+/unlock/[^/\s]+/", message.body).group(0)


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


def test_a_failed_send_keeps_the_row_and_the_retry_carries_the_same_link(
    cast, alice_api, monkeypatch
):
    order = place(alice_api)
    row = OutboundEmail.objects.get(object_id=str(order.pk))
    sent_links = []

    def smtp_down(self, fail_silently=False):
        sent_links.append(unlock_link(self))
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailMultiAlternatives, "send", smtp_down)
    with pytest.raises(ConnectionRefusedError):
        outbox.deliver_email(row_id=str(row.pk))

    row.refresh_from_db()
    assert row.sent_at is None and row.claimed_until is None  # free for the retry at once
    assert row.attempts == 1 and "smtp down" in row.last_error

    monkeypatch.undo()
    assert outbox.deliver_email(row_id=str(row.pk)) is True
    assert len(mail.outbox) == 1
    assert unlock_link(mail.outbox[0]) == sent_links[0]
    assert find_order_by_unlock_secret(sent_links[0].rstrip("/").rsplit("/", 1)[-1]) == order


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
    row = OutboundEmailFactory(
        kind="order", object_id="00000000-0000-0000-0000-000000000000", to=["x@y.example"]
    )

    assert outbox.deliver_email(row_id=str(row.pk)) is False
    row.refresh_from_db()
    assert row.sent_at is not None and len(mail.outbox) == 0


# --- a repeated delivery is the same message (issue: the outbox across faults) ----------------


def test_a_crash_between_send_and_record_repeats_the_identical_message(
    cast, alice_api, monkeypatch
):
    """The record step's commit fails once (the database went away after the message left):
    the row is sent again once its claim runs out, and the copy is the same message."""
    from django.db import OperationalError, transaction

    order = place(alice_api, "PO-CRASH")
    row = OutboundEmail.objects.get(object_id=str(order.pk))
    real_atomic = transaction.atomic
    failures = iter([False, True])  # the render's block commits; the record's fails

    def commit_fails_once(*args, **kwargs):
        if next(failures, False):
            raise OperationalError("server closed the connection unexpectedly")
        return real_atomic(*args, **kwargs)

    monkeypatch.setattr(outbox.transaction, "atomic", commit_fails_once)
    with pytest.raises(OperationalError):
        outbox.deliver_email(row_id=str(row.pk))
    monkeypatch.undo()
    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.sent_at is None and row.claimed_until is not None

    # Another sender (a retried task) backs off while the claim holds...
    with pytest.raises(outbox.ClaimedElsewhere):
        outbox.deliver_email(row_id=str(row.pk))
    # ...and the sweep sends it again once the claim has run out.
    later = timezone.now() + timedelta(minutes=10)
    assert outbox.sweep_outbox(now=later) == 1

    first, second = mail.outbox
    assert first.extra_headers["Message-ID"] == second.extra_headers["Message-ID"]
    assert first.extra_headers["Message-ID"].endswith("@licensing.example.test>")
    assert first.subject == second.subject
    assert first.body == second.body and unlock_link(first) == unlock_link(second)
    assert first.message().as_bytes() == second.message().as_bytes()  # the very same bytes
    secret = unlock_link(first).rstrip("/").rsplit("/", 1)[-1]
    assert find_order_by_unlock_secret(secret) == order
    assert alice_api.get(f"/api/v1/orders/{order.pk}").json()["state"] == "locked"


def test_two_senders_given_one_row_send_it_once(cast, alice_api):
    order = place(alice_api, "PO-TWICE")
    row = OutboundEmail.objects.get(object_id=str(order.pk))

    claimed = outbox._claim(str(row.pk), timezone.now())
    assert claimed is not None
    with pytest.raises(outbox.ClaimedElsewhere):
        outbox.deliver_email(row_id=str(row.pk))
    assert mail.outbox == []


def test_no_transaction_is_open_while_the_message_is_sent(cast, alice_api, monkeypatch):
    from django.db import connection

    order = place(alice_api, "PO-NOTX")
    row = OutboundEmail.objects.get(object_id=str(order.pk))
    seen = []
    real_send = EmailMultiAlternatives.send
    # pytest-django's db fixture wraps the test in a transaction; count the blocks the
    # sender itself opened.
    depth = len(connection.atomic_blocks)
    monkeypatch.setattr(
        EmailMultiAlternatives,
        "send",
        lambda self, fail_silently=False: (
            seen.append(len(connection.atomic_blocks) - depth),
            real_send(self, fail_silently),
        )[1],
    )

    assert outbox.deliver_email(row_id=str(row.pk)) is True
    assert seen == [0]


def test_a_resent_order_email_retires_the_earlier_row_and_link(cast, alice_api):
    from orders.services import resend_order_email
    from smartaccounts.actors import Actor

    order = place(alice_api, "PO-RESENT")
    first = OutboundEmail.objects.get(object_id=str(order.pk))
    # The first sender sent, then died before recording it: its claim is still on the row.
    assert outbox.deliver_email(row_id=str(first.pk)) is True
    OutboundEmail.objects.filter(pk=first.pk).update(
        state="pending", sent_at=None, claimed_until=timezone.now()
    )
    old = unlock_link(mail.outbox[0])

    resend_order_email(order=order, actor=Actor.system("tests"))
    second = OutboundEmail.objects.exclude(pk=first.pk).get(object_id=str(order.pk))
    assert outbox.deliver_email(row_id=str(second.pk)) is True
    new = unlock_link(mail.outbox[1])
    assert old != new

    # The first row's claim runs out: the sweep finds it closed, sends nothing, revives nothing.
    assert outbox.sweep_outbox(now=timezone.now() + timedelta(hours=1)) == 0
    assert len(mail.outbox) == 2
    assert find_order_by_unlock_secret(new.rstrip("/").rsplit("/", 1)[-1]) == order
    assert find_order_by_unlock_secret(old.rstrip("/").rsplit("/", 1)[-1]) is None


def test_invitation_and_reset_links_are_the_same_on_every_delivery(cast, client):
    from django.contrib.auth.tokens import default_token_generator

    from smartaccounts.emails import render_invitation_email, render_password_reset_email

    invited = cast.alice_member
    invited.set_unusable_password()
    invited.save()
    invitation = OutboundEmailFactory(
        kind="invitation", object_id=str(invited.pk), to=[invited.email]
    )
    reset = OutboundEmailFactory(
        kind="password_reset", object_id=str(cast.alice_admin.pk), to=[cast.alice_admin.email]
    )
    for row, renderer in (
        (invitation, render_invitation_email),
        (reset, render_password_reset_email),
    ):
        once, again = renderer(row), renderer(row)
        assert once.body == again.body and once.subject == again.subject
        token = re.search(r"/([0-9a-z]+-[0-9a-f]+)/", once.body).group(1)
        user = invited if row is invitation else cast.alice_admin
        assert default_token_generator.check_token(user, token)
