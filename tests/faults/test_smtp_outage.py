"""A mail outage longer than any fixed retry budget strands no e-mail (issue #18, item 1).

A real SMTP server (aiosmtpd) is down — its port closed — while the sweep runs again and again
over simulated hours; once it is back, the order e-mail arrives exactly once. An outage longer
than OUTBOX_GIVE_UP_HOURS gives the row up: it is counted in the metrics, shown to the partner
on the order's page with a Re-send, and to vendor staff in the back office.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from notifications import services as outbox
from orders.models import Order

from ..orders.payloads import place
from ..wsgi_app import call
from .smtp_server import SmtpServer

pytestmark = pytest.mark.django_db

FAILED_NOTICE = "The order e-mail could not be delivered"


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 5
    settings.OUTBOX_GIVE_UP = timedelta(hours=72)
    try:
        yield server  # down (its port closed) until the test starts it
    finally:
        server.stop()


def sweep_at(moment) -> int:
    with time_machine.travel(moment, tick=False):
        return outbox.sweep_outbox()


def order_page(user, order: Order) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/orders/{order.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def failed_gauge() -> float:
    text = call("/internal/metrics").body.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "licensing_outbox_failed":
                return sample.value
    raise AssertionError("licensing_outbox_failed is not exposed")


def test_an_outage_of_hours_strands_nothing_and_the_mail_arrives_once(cast, alice_api, smtp):
    order, row = place(alice_api, "PO-OUTAGE")
    assert smtp.refuses()
    start = row.created_at

    # Down for 36 sweeps over twelve hours: more attempts than the former budget of 12.
    moments = [start + timedelta(minutes=20 * n) for n in range(1, 37)]
    for moment in moments:
        assert sweep_at(moment) == 0
        row.refresh_from_db()
        assert row.state == "pending" and row.sent_at is None
        assert row.claimed_until is None and "Connection" in row.last_error
        # The next attempt is scheduled on the row, never more than an hour away.
        assert moment < row.next_attempt_at <= moment + timedelta(hours=1)
    assert row.attempts > 12
    # Backoff: once the waits grew past the sweeps' 20 minutes, some sweeps found it not due.
    assert row.attempts < len(moments)

    # Nothing was sent, so the order's page says nothing about a link sent.
    order.refresh_from_db()
    assert order.unlock_link_issued_at is None
    page = order_page(cast.alice_admin, order)
    assert "in the e-mail of" not in page and FAILED_NOTICE not in page

    smtp.start()
    back = moments[-1] + timedelta(hours=1)
    assert sweep_at(back) == 1
    assert sweep_at(back + timedelta(hours=1)) == 0
    outbox.deliver_email(row_id=str(row.pk))  # a late duplicate of the task sends nothing

    assert len(smtp.received) == 1
    message = smtp.received[0]
    assert "PO-OUTAGE" in message["Subject"]
    assert message["To"] == "orders@alice.example"
    assert re.search(r"/unlock/[^/\s]+/", message.get_body(("plain",)).get_content())
    row.refresh_from_db()
    assert row.state == "sent" and row.sent_at is not None
    # The link's issue date is recorded with the send: the e-mail's own date.
    order.refresh_from_db()
    assert order.unlock_link_issued_at == row.created_at
    assert "in the e-mail of" in order_page(cast.alice_admin, order)


def test_after_72_hours_the_row_is_given_up_shown_and_can_be_re_sent(cast, alice_api, smtp):
    order, row = place(alice_api, "PO-GIVEUP")
    start = row.created_at

    for hours in (1, 5, 24, 48, 71):
        assert sweep_at(start + timedelta(hours=hours)) == 0
        row.refresh_from_db()
        assert row.state == "pending"
    assert failed_gauge() == 0
    assert FAILED_NOTICE not in order_page(cast.alice_admin, order)

    assert sweep_at(start + timedelta(hours=72, minutes=1)) == 0
    row.refresh_from_db()
    assert row.state == "failed" and row.failed_at is not None and row.sent_at is None
    # Given up: the sweep takes it no more.
    assert sweep_at(start + timedelta(hours=80)) == 0
    row.refresh_from_db()
    assert row.state == "failed"

    # Counted in the metrics, shown to the partner with the Re-send, and to vendor staff.
    assert failed_gauge() == 1
    page = order_page(cast.alice_admin, order)
    assert FAILED_NOTICE in page and ">Re-send</button>" in page
    staff = Client()
    staff.force_login(cast.vendor_staff)
    listed = staff.get("/admin/notifications/outboundemail/?state__exact=failed")
    assert listed.status_code == 200
    assert "Could not be delivered" in listed.content.decode()
    assert listed.context["cl"].result_count == 1

    # The partner re-sends once the mail server is back: one e-mail, with a link that works.
    smtp.start()
    partner = Client()
    partner.force_login(cast.alice_admin)
    response = partner.post(f"/orders/{order.pk}/resend/", {"next": f"/orders/{order.pk}/"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.state == "closed"
    assert failed_gauge() == 0
    assert FAILED_NOTICE not in order_page(cast.alice_admin, order)
    assert outbox.sweep_outbox(now=timezone.now() + timedelta(minutes=2)) == 1
    assert len(smtp.received) == 1 and "PO-GIVEUP" in smtp.received[0]["Subject"]
    order.refresh_from_db()
    assert order.unlock_link_issued_at is not None
