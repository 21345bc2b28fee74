"""The sweep claims each row at the time it takes it and bounds its own run, so a claim never
runs out while its sender still works (issue #18, item 2)."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from notifications import services as outbox
from notifications.checks import check_claim_outlives_the_sweep
from notifications.models import OutboundEmail

from ..orders.payloads import URL, order_body

pytestmark = pytest.mark.django_db

SEND_TAKES = timedelta(seconds=100)


def place_orders(client, count: int) -> list[OutboundEmail]:
    for number in range(count):
        response = client.post(URL, order_body(f"PO-SWEEP-{number}"), format="json")
        assert response.status_code == 201, response.content
    return list(OutboundEmail.objects.order_by("created_at"))


@pytest.fixture
def slow_mail_server(monkeypatch):
    """Every send takes SEND_TAKES of the (travelling) clock; during it, a second sender tries
    to take the row, as a sweep or a retried task would once the claim ran out."""
    real_send = EmailMultiAlternatives.send
    during: list[dict] = []
    state: dict = {}

    def slow_send(self, fail_silently=False):
        row_id = self.extra_headers["Message-ID"].strip("<>").split("@", 1)[0]
        state["clock"].shift(SEND_TAKES / 2)
        row = OutboundEmail.objects.get(pk=row_id)
        try:
            taken = outbox._claim(row_id, timezone.now())
        except outbox.ClaimedElsewhere:
            taken = None
        during.append(
            {"claim_holds": row.claimed_until > timezone.now(), "taken_over": taken is not None}
        )
        state["clock"].shift(SEND_TAKES / 2)
        return real_send(self, fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", slow_send)
    return state, during


def test_every_claim_holds_while_its_row_is_sent_however_long_the_sweep_runs(
    cast, alice_api, settings, slow_mail_server
):
    settings.OUTBOX_CLAIM_LEASE = timedelta(seconds=300)
    settings.OUTBOX_SWEEP_MAX_SECONDS = timedelta(hours=1)  # not the bound here
    rows = place_orders(alice_api, 6)  # six sends of 100 s: twice the lease in all
    state, during = slow_mail_server

    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False) as clock:
        state["clock"] = clock
        assert outbox.sweep_outbox() == 6

    assert len(during) == 6
    assert all(seen["claim_holds"] for seen in during), during
    assert not any(seen["taken_over"] for seen in during), during
    assert len(mail.outbox) == 6
    for row in rows:
        row.refresh_from_db()
        assert row.state == "sent" and row.attempts == 1


def test_a_sweep_starts_no_row_after_its_time_limit_and_the_next_goes_on(
    cast, alice_api, settings, slow_mail_server
):
    settings.OUTBOX_SWEEP_MAX_SECONDS = timedelta(seconds=250)
    place_orders(alice_api, 5)
    state, _ = slow_mail_server

    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False) as clock:
        state["clock"] = clock
        # Rows started at 0, 100 and 200 s; at 300 s the limit has passed.
        assert outbox.sweep_outbox() == 3
        assert OutboundEmail.objects.filter(state="pending", attempts=0).count() == 2
        assert outbox.sweep_outbox() == 2
    assert len(mail.outbox) == 5


def test_a_sweep_takes_at_most_its_row_limit(cast, alice_api, settings):
    settings.OUTBOX_SWEEP_MAX_ROWS = 2
    place_orders(alice_api, 3)
    later = timezone.now() + timedelta(minutes=5)

    assert outbox.sweep_outbox(now=later) == 2
    assert outbox.sweep_outbox(now=later) == 1
    assert outbox.sweep_outbox(now=later) == 0


def test_a_claim_shorter_than_a_sweep_run_stops_start_up(settings):
    assert check_claim_outlives_the_sweep() == []  # the defaults

    settings.OUTBOX_CLAIM_LEASE = timedelta(seconds=100)
    settings.OUTBOX_SWEEP_MAX_SECONDS = timedelta(seconds=50)
    settings.EMAIL_TIMEOUT = 60
    (error,) = check_claim_outlives_the_sweep()
    assert error.id == "notifications.E001"
