"""A redelivered row is the same message even if its object changed between the send and its
record: the first render is kept on the row, encrypted, and sent again as it is (issue #18,
item 3)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import services as outbox
from notifications.models import OutboundEmail
from orders.services import find_order_by_unlock_secret

from ..orders.payloads import place, unlock_secret

pytestmark = pytest.mark.django_db


def send_then_die_before_recording(row: OutboundEmail) -> None:
    """The message leaves; the sender dies before the send is recorded: its claim stays on the
    row, which is still pending."""
    assert outbox.deliver_email(row_id=str(row.pk)) is True
    OutboundEmail.objects.filter(pk=row.pk).update(
        state="pending", sent_at=None, claimed_until=timezone.now() + timedelta(minutes=5)
    )
    assert len(mail.outbox) == 1


def test_the_order_changed_between_send_and_record_the_copy_is_the_same_message(cast, alice_api):
    order, row = place(alice_api, "PO-SEALED")
    send_then_die_before_recording(row)

    # Before the claim runs out, the order changes: the customer is renamed, the partner's
    # address too, and a line's quantity.
    customer = order.customer
    customer_name = customer.name
    customer.name = "Renamed Customer Ltd"
    customer.save(update_fields=["name"])
    cast.alice_reseller.email = "new-orders@alice.example"
    cast.alice_reseller.save(update_fields=["email"])
    line = order.lines.first()
    line.quantity += 7
    line.save(update_fields=["quantity"])

    assert outbox.sweep_outbox(now=timezone.now() + timedelta(minutes=10)) == 1

    first, second = mail.outbox
    assert second.subject == first.subject and customer_name in second.subject
    assert second.to == first.to == ["orders@alice.example"]
    assert second.body == first.body
    assert second.alternatives == first.alternatives
    assert first.message().as_bytes() == second.message().as_bytes()  # the very same bytes
    assert find_order_by_unlock_secret(unlock_secret(second)) == order
    row.refresh_from_db()
    assert row.state == "sent" and row.attempts == 2


def test_the_stored_message_is_encrypted_and_holds_no_link_in_clear(cast, alice_api):
    order, row = place(alice_api, "PO-CLOSED-BOX")
    assert outbox.deliver_email(row_id=str(row.pk)) is True

    row.refresh_from_db()
    secret = unlock_secret(mail.outbox[0])
    assert row.sealed
    for clear in (secret, "PO-CLOSED-BOX", "unlock", "orders@alice.example"):
        assert clear not in row.sealed
    kept = outbox.unseal(row.sealed)
    assert kept.subject == mail.outbox[0].subject
    assert kept.to == ["orders@alice.example"] and secret in kept.body
    assert secret in kept.alternatives[0][0]


def test_a_message_sealed_under_another_key_is_rendered_anew(cast, alice_api, settings):
    order, row = place(alice_api, "PO-NEWKEY")
    settings.OUTBOX_LINK_KEY = "a-key-before-rotation"
    claimed = outbox._claim(str(row.pk), timezone.now())
    assert claimed is not None
    outbox._message_for(*claimed)  # sealed under the old key, never sent
    OutboundEmail.objects.filter(pk=row.pk).update(claimed_until=None)

    settings.OUTBOX_LINK_KEY = "the-key-after-rotation"
    assert outbox.deliver_email(row_id=str(row.pk)) is True
    assert find_order_by_unlock_secret(unlock_secret(mail.outbox[0])) == order
