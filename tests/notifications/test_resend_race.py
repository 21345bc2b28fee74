"""A re-send racing a sender of the earlier e-mail (issue #18, item 6), on real PostgreSQL with
threads of their own connections: the sender that claimed the old row before the re-send never
revives the old link nor kills the new one."""

import threading

import pytest
from django.core import mail

from notifications import services as outbox
from notifications import tasks
from notifications.models import OutboundEmail
from orders.services import find_order_by_unlock_secret, resend_order_email
from smartaccounts.actors import Actor

from ..concurrency import in_background
from ..conftest import requires_postgres
from ..orders.payloads import place, unlock_secret

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

WAIT = 30


@pytest.fixture
def broker_down(monkeypatch):
    """Nothing is queued at commit: the test decides who sends which row, and when."""

    def refused(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.send_email, "delay", refused)


def test_a_sender_that_claimed_before_the_re_send_sends_nothing_and_revives_nothing(
    cast, alice_api, broker_down, monkeypatch
):
    order, old_row = place(alice_api, "PO-RACE-RESEND")
    claimed, go = threading.Event(), threading.Event()
    real_claim = outbox._claim
    outcome: dict = {}

    def claim_then_stall(row_id, now):
        taken = real_claim(row_id, now)
        if row_id == str(old_row.pk):
            claimed.set()
            assert go.wait(WAIT)
        return taken

    monkeypatch.setattr(outbox, "_claim", claim_then_stall)

    def old_sender(stop):
        outcome["sent"] = outbox.deliver_email(row_id=str(old_row.pk))

    with in_background(old_sender):
        assert claimed.wait(WAIT)
        # The partner re-sends while that sender holds its claim; the new e-mail goes out.
        resend_order_email(order=order, actor=Actor.system("tests"))
        new_row = OutboundEmail.objects.exclude(pk=old_row.pk).get(object_id=str(order.pk))
        assert outbox.deliver_email(row_id=str(new_row.pk)) is True
        go.set()

    assert outcome["sent"] is False
    (message,) = mail.outbox  # the re-sent e-mail only
    new_secret = unlock_secret(message)
    assert find_order_by_unlock_secret(new_secret) == order  # the new link works
    old_secret = outbox.link_secret(old_row, "unlock")
    assert find_order_by_unlock_secret(old_secret) is None  # the old one stays dead
    old_row.refresh_from_db()
    assert old_row.state == "closed"
    order.refresh_from_db()
    assert order.unlock_link_issued_at == new_row.created_at


def test_a_re_send_while_the_old_row_is_being_rendered_waits_for_it_and_wins(
    cast, alice_api, broker_down, monkeypatch
):
    """The old sender is inside its render (holding the row's lock) when the re-send starts:
    the re-send waits for it, then retires its link; the old send is not recorded."""
    order, old_row = place(alice_api, "PO-RACE-RESEND")
    rendering, resend_started = threading.Event(), threading.Event()
    real_render = outbox.render
    outcome: dict = {}

    def slow_render(row):
        message = real_render(row)
        if row.pk == old_row.pk:
            rendering.set()
            resend_started.wait(WAIT)
            threading.Event().wait(0.5)  # the re-send is now blocked on the row's lock
        return message

    monkeypatch.setattr(outbox, "render", slow_render)

    def old_sender(stop):
        outcome["sent"] = outbox.deliver_email(row_id=str(old_row.pk))

    with in_background(old_sender):
        assert rendering.wait(WAIT)
        resend_started.set()
        resend_order_email(order=order, actor=Actor.system("tests"))

    assert outcome["sent"] is False  # it left, but the row was closed before its record
    new_row = OutboundEmail.objects.exclude(pk=old_row.pk).get(object_id=str(order.pk))
    assert outbox.deliver_email(row_id=str(new_row.pk)) is True
    new_secret = unlock_secret(mail.outbox[-1])
    assert find_order_by_unlock_secret(new_secret) == order
    assert find_order_by_unlock_secret(outbox.link_secret(old_row, "unlock")) is None
    old_row.refresh_from_db()
    assert old_row.state == "closed"
