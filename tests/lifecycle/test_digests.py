"""One digest per partner per day: the 90/60/30/7 thresholds, newly expired, renewed, stale and
locked-too-long items reported once, empty digests not sent, tenants kept apart."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from lifecycle.digests import send_partner_digests, threshold_for
from lifecycle.models import Digest, Reminder, ToldThrough
from lifecycle.services import run_daily_jobs
from notifications.models import OutboundEmail

from ..conftest import api_client_for
from ..factories import LicenseFactory, ServerFactory
from ..orders.payloads import URL, order_body
from .conftest import START, at, subscription

pytestmark = pytest.mark.django_db


def digests_until(clock, last_day: int, partner) -> dict[int, dict]:
    """Run the digests once a day from START to START + last_day; {day: content} sent."""
    sent = {}
    for day in range(last_day + 1):
        clock.move_to(at(days=day))
        send_partner_digests(now=timezone.now())
        digest = Digest.objects.filter(partner=partner, day=at(days=day).date()).first()
        if digest is not None:
            sent[day] = digest.content
    return sent


@pytest.mark.parametrize(
    ("days_left", "threshold"),
    [
        (120, None),
        (91, None),
        (90, 90),
        (61, 90),
        (60, 60),
        (31, 60),
        (30, 30),
        (8, 30),
        (7, 7),
        (1, 7),
    ],
)
def test_threshold_for(days_left, threshold):
    assert threshold_for(days_left) == threshold


def test_care_ending_is_reported_once_at_each_threshold(cast, carol_account, clock):
    LicenseFactory(
        account=carol_account, product=cast.recording, kind="perpetual", care_ends_at=at(days=85)
    )

    sent = digests_until(clock, 86, cast.alice_reseller)

    assert sorted(sent) == [0, 25, 55, 78]
    for day, threshold in [(0, 90), (25, 60), (55, 30), (78, 7)]:
        (item,) = sent[day]["terms_ending"]
        assert item["threshold"] == threshold and item["days_left"] == 85 - day
        assert item["what"] == "care" and item["kind"] == "perpetual"
        assert (item["customer"], item["product"]) == ("Carol Corp", "Call Recording")
        assert item["ends_at"] == at(days=85).isoformat()
        assert not any(sent[day][s] for s in ("renewed", "expired", "stale_servers"))
    # Told: one watermark per threshold (and one for the other news), not a row per item.
    assert ToldThrough.objects.filter(organization=cast.alice_reseller).count() == 5
    assert not Reminder.objects.exists()
    assert Digest.objects.count() == 4  # nobody else had anything to say


def test_a_term_seen_late_is_reported_at_its_current_threshold_only(cast, carol_account, clock):
    subscription(carol_account, cast.console, at(days=55))

    sent = digests_until(clock, 30, cast.alice_reseller)

    assert sorted(sent) == [0, 25]
    (first,) = sent[0]["terms_ending"]
    assert (first["what"], first["threshold"], first["renews_itself"]) == ("term", 60, True)
    assert [i["threshold"] for i in sent[25]["terms_ending"]] == [30]


def test_an_empty_digest_is_not_sent(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=200))

    with django_capture_on_commit_callbacks(execute=True):
        assert send_partner_digests(now=timezone.now()) == 0

    assert not Digest.objects.exists() and not Reminder.objects.exists()
    assert not OutboundEmail.objects.exists()
    assert mail.outbox == []


def test_the_digest_goes_to_the_partners_contact_address(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=85))

    with django_capture_on_commit_callbacks(execute=True):
        assert send_partner_digests(now=timezone.now()) == 1

    (message,) = mail.outbox
    assert message.to == ["orders@alice.example"]
    assert message.subject == "Cloud Licensing: your daily summary for 10 Mar 2031"
    assert (
        "- Carol Corp: Call Recording (10 channels, perpetual) — care ends 2031-06-03, in 85 days"
        in (message.body)
    )
    assert "https://licensing.example.test/renewals/" in message.body
    assert "Dates and times are in UTC." in message.body
    html = message.alternatives[0][0]
    assert "Carol Corp" in html and "Call Recording" in html
    row = OutboundEmail.objects.get(kind="digest")
    assert row.sent_at is not None and row.to == ["orders@alice.example"]
    assert row.object_id == str(Digest.objects.get(partner=cast.alice_reseller).pk)


def test_running_twice_the_same_day_sends_one_digest(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=85))

    with django_capture_on_commit_callbacks(execute=True):
        assert send_partner_digests(now=timezone.now()) == 1
        # Something new the same day waits for tomorrow's digest.
        clock.move_to(at(hours=6))
        LicenseFactory(account=carol_account, product=cast.console, care_ends_at=at(days=30))
        assert send_partner_digests(now=timezone.now()) == 0

    assert Digest.objects.count() == 1
    assert OutboundEmail.objects.filter(kind="digest").count() == 1
    assert len(mail.outbox) == 1

    clock.move_to(at(days=1))
    assert send_partner_digests(now=timezone.now()) == 1
    tomorrow = Digest.objects.get(day=at(days=1).date()).content
    assert [(i["product"], i["threshold"]) for i in tomorrow["terms_ending"]] == [
        ("Attendant Console", 30)
    ]


def test_expired_renewed_stale_and_locked_items_are_reported_once(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    renewing = subscription(carol_account, cast.console, at(days=1, hours=1))
    ending = subscription(carol_account, cast.analytics, at(days=1, hours=1), auto_renew=False)
    silent = ServerFactory(
        account=carol_account, name="pbx-silent", state="active", last_sync_at=START
    )
    # Placed by the distributor for Alice: both partners hear that it is still locked.
    response = api_client_for(cast.distributor).post(
        URL,
        order_body(
            "PO-WAITING",
            {"name": "Carol Corp", "email": "it@carol.example"},
            reseller=str(cast.alice_reseller.pk),
        ),
        format="json",
    )
    assert response.status_code == 201, response.content

    sent = {}
    for day in range(17):
        clock.move_to(at(days=day, hours=2))
        run_daily_jobs()
        for digest in Digest.objects.filter(day=at(days=day).date()):
            sent[(digest.partner.name, day)] = digest.content

    assert sorted(sent) == [
        ("Alice Reseller", 0),  # terms ending within 7 days
        ("Alice Reseller", 1),  # renewed and expired
        ("Alice Reseller", 2),  # the server silent for 3 refresh periods
        ("Alice Reseller", 14),  # the order still locked
        ("Dist One", 14),
    ]
    day0 = sent[("Alice Reseller", 0)]
    assert sorted(i["product"] for i in day0["terms_ending"]) == [
        "Attendant Console",
        "Call Analytics",
    ]
    day1 = sent[("Alice Reseller", 1)]
    assert day1["renewed"] == [
        {
            "customer": "Carol Corp",
            "product": "Attendant Console",
            "quantity": 10,
            "unit": "seats",
            "new_ends_at": "2032-03-11T07:00:00+00:00",
        }
    ]
    assert [(i["product"], i["ended_at"]) for i in day1["expired"]] == [
        ("Call Analytics", "2031-03-11T07:00:00+00:00")
    ]
    assert not any(day1[s] for s in ("terms_ending", "stale_servers", "locked_orders"))
    day2 = sent[("Alice Reseller", 2)]
    assert day2["stale_servers"] == [
        {"customer": "Carol Corp", "server": "pbx-silent", "last_sync_at": START.isoformat()}
    ]
    assert not any(day2[s] for s in ("terms_ending", "renewed", "expired", "locked_orders"))
    for partner in ("Alice Reseller", "Dist One"):
        (locked,) = sent[(partner, 14)]["locked_orders"]
        assert (locked["reference"], locked["customer"], locked["days"]) == (
            "PO-WAITING",
            "Carol Corp",
            14,
        )
    renewing.refresh_from_db()
    ending.refresh_from_db()
    silent.refresh_from_db()
    assert (renewing.state, ending.state, silent.state) == ("active", "expired", "stale")


def test_another_resellers_customers_never_appear(
    cast, carol_account, dave_account, clock, django_capture_on_commit_callbacks
):
    LicenseFactory(account=carol_account, product=cast.recording, care_ends_at=at(days=85))
    subscription(dave_account, cast.console, at(days=20))
    ServerFactory(account=dave_account, name="dave-pbx", state="stale", last_sync_at=START)

    with django_capture_on_commit_callbacks(execute=True):
        assert send_partner_digests(now=timezone.now()) == 2

    alice = Digest.objects.get(partner=cast.alice_reseller).content
    bob = Digest.objects.get(partner=cast.bob_reseller).content
    assert {i["customer"] for i in alice["terms_ending"]} == {"Carol Corp"}
    assert alice["stale_servers"] == []
    assert {i["customer"] for i in bob["terms_ending"]} == {"Dave Inc"}
    assert [s["server"] for s in bob["stale_servers"]] == ["dave-pbx"]
    assert not Digest.objects.exclude(partner__in=[cast.alice_reseller, cast.bob_reseller])
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {"orders@alice.example", "orders@bob.example"}
    assert "Dave" not in by_address["orders@alice.example"].body
    assert "dave-pbx" not in by_address["orders@alice.example"].body
    assert "Carol" not in by_address["orders@bob.example"].body


def test_a_renewed_term_is_reported_again_at_its_new_thresholds(cast, carol_account, clock):
    lic = subscription(carol_account, cast.console, at(days=5))
    send_partner_digests(now=timezone.now())  # reported at 7 days

    clock.move_to(at(days=5, hours=1))
    run_daily_jobs()  # renewed to 2032-03-15
    lic.refresh_from_db()
    clock.move_to(lic.ends_at - timedelta(days=90))
    assert send_partner_digests(now=timezone.now()) == 1

    (item,) = Digest.objects.get(day=timezone.now().date()).content["terms_ending"]
    assert (item["threshold"], item["ends_at"]) == (90, lic.ends_at.isoformat())
