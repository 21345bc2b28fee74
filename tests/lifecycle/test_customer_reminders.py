"""Customers get their own reminder (issue 9): when care or a subscription ends within 30 days,
one e-mail a day at most, each end told once at 30 and once at 7 days, to the customer's users
who did not turn reminders off on the Notifications page."""

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from lifecycle.models import ExpiryNotice, ToldThrough
from lifecycle.reminders import REMINDER_LISTED, send_customer_reminders
from lifecycle.services import run_daily_jobs
from notifications.models import OutboundEmail
from smartaccounts.models import AuditEvent, User

from ..factories import CustomerFactory, LicenseFactory, PartnerLinkFactory, UserFactory
from .conftest import at, subscription

pytestmark = pytest.mark.django_db

SETTINGS = "/settings/notifications/"


def reminders_until(clock, last_day: int, capture) -> dict[int, list[tuple[str, int]]]:
    """Run the daily jobs once a day; {day: [(to, lines)]} of the reminders e-mailed."""
    sent: dict[int, list[tuple[str, int]]] = {}
    for day in range(last_day + 1):
        clock.move_to(at(days=day, hours=1))
        mail.outbox = []
        with capture(execute=True):
            run_daily_jobs()
        for message in mail.outbox:
            if "end soon" in message.subject:
                sent.setdefault(day, []).append((",".join(message.to), message.body.count("\n- ")))
    return sent


def test_each_end_is_told_once_at_30_and_once_at_7_days(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    care = LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(40))
    term = subscription(carol_account, cast.console, at(days=35), auto_renew=False)
    subscription(carol_account, cast.analytics, at(days=20))  # renews itself: it does not end
    LicenseFactory(account=carol_account, product=cast.billing, care_ends_at=at(days=200))

    sent = reminders_until(clock, 36, django_capture_on_commit_callbacks)

    to = "carol@carol.example,viewer@carol.example"
    assert sent == {5: [(to, 1)], 10: [(to, 1)], 28: [(to, 1)], 33: [(to, 1)]}
    told = sorted(
        (line["license"], line["what"], line["threshold"])
        for notice in ExpiryNotice.objects.all()
        for line in notice.content["lines"]
    )
    assert told == sorted(
        [
            (str(term.pk), "term", 30),
            (str(care.pk), "care", 30),
            (str(term.pk), "term", 7),
            (str(care.pk), "care", 7),
        ]
    )
    assert ExpiryNotice.objects.filter(customer=cast.carol_customer).count() == 4
    # What was told: one watermark per threshold, not a row per end.
    assert ToldThrough.objects.filter(organization=cast.carol_customer).count() == 2
    assert AuditEvent.objects.filter(action="reminder.sent", account=carol_account).count() == 4


def test_the_reminder_says_what_ends_when_and_whom_to_ask(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=30))
    subscription(carol_account, cast.console, at(days=7), auto_renew=False, quantity=4)

    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 1

    (message,) = mail.outbox
    assert message.subject == "Cloud Licensing: care or subscriptions of Carol Corp end soon"
    assert sorted(message.to) == ["carol@carol.example", "viewer@carol.example"]
    body = message.body
    assert "- Attendant Console (4 seats, subscription): the subscription ends on 2031-03-17" in (
        body
    )
    assert "- Call Recording (10 channels, perpetual): care ends on 2031-04-09, in 30 days" in body
    assert "contact Alice Reseller (orders@alice.example)" in body
    assert "https://licensing.example.test/settings/notifications/" in body
    assert "Carol Corp" in message.alternatives[0][0]
    row = OutboundEmail.objects.get(kind="expiry_reminder")
    assert row.sent_at is not None


def test_a_person_who_turned_reminders_off_gets_none(
    cast, carol_account, client, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=20))
    client.force_login(cast.carol_viewer)

    page = client.get(SETTINGS)
    assert page.status_code == 200
    assert 'name="expiry_reminders"' in page.content.decode() and "checked" in (
        page.content.decode()
    )
    response = client.post(SETTINGS, {})  # the box unticked
    assert response.status_code == 302 and response["Location"] == SETTINGS
    cast.carol_viewer.refresh_from_db()
    assert cast.carol_viewer.expiry_reminders is False
    event = AuditEvent.objects.get(action="user.notifications_changed")
    assert event.actor_user == cast.carol_viewer and event.data == {"expiry_reminders": False}
    assert "checked" not in client.get(SETTINGS).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 1

    (message,) = mail.outbox
    assert message.to == ["carol@carol.example"]


def test_nobody_left_to_tell_sends_nothing_and_tells_later_who_opts_back_in(
    cast, carol_account, client, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=20))
    User.objects.filter(organization=cast.carol_customer).update(expiry_reminders=False)

    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 0
    assert not ExpiryNotice.objects.exists() and mail.outbox == []

    client.force_login(cast.carol_admin)
    client.post(SETTINGS, {"expiry_reminders": "on"})
    clock.move_to(at(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 1
    assert mail.outbox[0].to == ["carol@carol.example"]


def test_twice_the_same_day_sends_one_and_partners_and_other_customers_get_none(
    cast, carol_account, dave_account, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=25))
    LicenseFactory(account=dave_account, product=cast.recording, care_ends_at=at(days=6))
    UserFactory(email="dave@dave.example", organization=cast.dave_customer)
    UserFactory(email="gone@carol.example", organization=cast.carol_customer, is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 2
        assert send_customer_reminders(now=timezone.now()) == 0

    by_customer = {m.to[0].split("@")[1]: m for m in mail.outbox}
    assert sorted(by_customer) == ["carol.example", "dave.example"]
    assert by_customer["dave.example"].to == ["dave@dave.example"]
    assert "Carol" not in by_customer["dave.example"].body
    everyone = {address for m in mail.outbox for address in m.to}
    assert not {"gone@carol.example", "alice@alice.example", "orders@alice.example"} & everyone


def test_the_notifications_page_for_partners_anonymous_and_wrong_methods(cast, client):
    assert Client().get(SETTINGS).status_code == 302  # to the login
    client.force_login(cast.alice_member)
    page = client.get(SETTINGS).content.decode()
    assert "orders@alice.example" in page and 'name="expiry_reminders"' not in page
    assert client.put(SETTINGS).status_code == 405
    assert client.delete(SETTINGS).status_code == 405


def customers_with_ends(cast, count: int, per_customer: int) -> None:
    for n in range(count):
        customer = CustomerFactory(name=f"Customer {n:03d}")
        PartnerLinkFactory(customer=customer, reseller=cast.alice_reseller)
        UserFactory(email=f"it@c{n:03d}.example", organization=customer)
        for days in range(per_customer):
            LicenseFactory(
                account=customer.smart_account,
                product=cast.recording,
                care_ends_at=at(days=3 + days % 25),
            )


@pytest.mark.parametrize("customers, per_customer", [(3, 2), (40, 12)])
def test_customers_reminders_take_queries_per_batch_not_per_customer_or_end(
    cast, clock, settings, django_assert_max_num_queries, customers, per_customer
):
    """A batch of customers costs the same queries for 3 customers with 2 ends each or 40 with
    12: the ends read at once, notices, outbox rows, events and watermarks inserted in one
    statement each."""
    settings.DAILY_JOBS_BATCH_SIZE = 50
    customers_with_ends(cast, customers, per_customer)

    with django_assert_max_num_queries(12):
        assert send_customer_reminders(now=timezone.now()) == customers
    assert OutboundEmail.objects.filter(kind="expiry_reminder").count() == customers
    assert ToldThrough.objects.filter(topic="reminder").count() == customers * 2

    with django_assert_max_num_queries(3):  # the next hour: nothing new, a few reads
        assert send_customer_reminders(now=at(hours=1)) == 0


def test_more_customers_than_a_batch_cost_queries_per_batch(
    cast, clock, settings, django_assert_max_num_queries
):
    settings.DAILY_JOBS_BATCH_SIZE = 10
    customers_with_ends(cast, 35, 2)

    with django_assert_max_num_queries(1 + 4 * 11):  # 4 batches
        assert send_customer_reminders(now=timezone.now()) == 35


def test_a_long_list_of_ends_lists_the_nearest_and_counts_the_rest(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    for n in range(REMINDER_LISTED + 7):
        LicenseFactory(
            account=carol_account, product=cast.recording, care_ends_at=at(days=3 + n % 20)
        )

    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 1

    notice = ExpiryNotice.objects.get()
    assert notice.content["count"] == REMINDER_LISTED + 7 and notice.content["more"] == 7
    (message,) = mail.outbox
    assert message.body.count("\n- Call Recording") == REMINDER_LISTED
    assert "- and 7 more: see your licenses." in message.body
    assert "and 7 more" in message.alternatives[0][0]


def test_a_license_added_after_the_reminder_is_told_at_its_threshold(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=20))
    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 1

    # Added the next day, ending before what the watermark covers: still news.
    clock.move_to(at(days=1))
    late = LicenseFactory(account=carol_account, product=cast.console, care_ends_at=at(days=15))
    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 1
    (notice,) = ExpiryNotice.objects.filter(day=at(days=1).date())
    assert [line["license"] for line in notice.content["lines"]] == [str(late.pk)]

    clock.move_to(at(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 0


def test_a_line_break_in_the_customers_name_does_not_stick_the_reminder(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    cast.carol_customer.name = "Carol\r\nBcc: victim@example.org"
    cast.carol_customer.save()
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=6))

    with django_capture_on_commit_callbacks(execute=True):
        assert send_customer_reminders(now=timezone.now()) == 1

    (message,) = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert sorted(message.recipients()) == ["carol@carol.example", "viewer@carol.example"]
    assert OutboundEmail.objects.get(kind="expiry_reminder").sent_at is not None
