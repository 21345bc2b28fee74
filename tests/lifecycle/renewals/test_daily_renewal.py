"""Automatic renewal by the daily jobs: on, off, and twice at once."""

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.services import run_daily_jobs
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, LicenseRenewal
from smartaccounts.renewals import renew_subscription

from ...concurrency import run_together
from ...conftest import requires_postgres
from ...orders.payloads import URL
from ..conftest import entitlements, subscription, sync
from .conftest import CAROL, END, RENEWED_END, renewed_events

pytestmark = pytest.mark.django_db


def test_a_subscription_renews_itself_once_at_the_end_of_its_term(cast, carol_account, clock):
    lic = subscription(carol_account, cast.console, END)

    clock.move_to(END - timedelta(hours=1))
    assert run_daily_jobs()["renewed"] == 0
    lic.refresh_from_db()
    assert lic.ends_at == END

    clock.move_to(END + timedelta(hours=3))
    first, second = run_daily_jobs(), run_daily_jobs()

    assert (first["renewed"], first["expired"]) == (1, 0)
    assert (second["renewed"], second["expired"]) == (0, 0)
    lic.refresh_from_db()
    assert lic.state == License.State.ACTIVE
    assert lic.ends_at == RENEWED_END
    assert lic.care_ends_at == RENEWED_END  # care comes with the subscription
    renewal = LicenseRenewal.objects.get(license=lic)
    assert renewal.source == LicenseRenewal.Source.AUTOMATIC
    assert (renewal.period_ends_at, renewal.new_ends_at) == (END, RENEWED_END)
    event = renewed_events(lic).get()
    assert event.actor_label == "daily jobs" and event.actor_user is None
    assert event.account == carol_account and event.address is None
    assert event.data["source"] == "automatic"
    assert event.data["ends_at"] == RENEWED_END.isoformat()
    assert not AuditEvent.objects.filter(action="license.expired").exists()


@pytest.mark.parametrize(
    ("months", "ends_at", "renewed_to"),
    [
        (12, datetime(2031, 3, 31, 6, tzinfo=UTC), datetime(2032, 3, 31, 6, tzinfo=UTC)),
        (1, datetime(2031, 3, 31, 6, tzinfo=UTC), datetime(2031, 4, 30, 6, tzinfo=UTC)),
        (3, datetime(2031, 3, 31, 6, tzinfo=UTC), datetime(2031, 6, 30, 6, tzinfo=UTC)),
    ],
)
def test_the_term_added_is_the_licenses_renewal_term(
    cast, carol_account, clock, months, ends_at, renewed_to
):
    lic = subscription(carol_account, cast.console, ends_at, renewal_months=months)

    clock.move_to(ends_at + timedelta(minutes=1))
    run_daily_jobs()

    lic.refresh_from_db()
    assert (lic.ends_at, lic.care_ends_at) == (renewed_to, renewed_to)


def test_care_bought_beyond_the_new_term_is_kept(cast, carol_account, clock):
    long_care = END + timedelta(days=500)
    lic = subscription(carol_account, cast.console, END, care_ends_at=long_care)

    clock.move_to(END + timedelta(hours=1))
    run_daily_jobs()

    lic.refresh_from_db()
    assert lic.ends_at == RENEWED_END and lic.care_ends_at == long_care


def test_the_next_sync_carries_the_renewed_dates(cast, carol_account, clock, online_server, device):
    lic = subscription(carol_account, cast.console, END)
    _, credential = online_server((lic, 4))
    assert entitlements(sync(device, credential))[str(lic.pk)]["ends_at"] == "2031-03-30T06:00:00Z"

    clock.move_to(END + timedelta(hours=1))
    run_daily_jobs()

    item = entitlements(sync(device, credential))[str(lic.pk)]
    assert item["ends_at"] == item["care_ends_at"] == "2032-03-30T06:00:00Z"
    assert item["quantity"] == 4 and item["care_status"] == "active"


def test_renewal_turned_off_in_the_portal_lets_the_term_expire_and_leave_the_document(
    cast, carol_account, client, clock, online_server, device
):
    lic = subscription(carol_account, cast.console, END)
    server, credential = online_server((lic, 4))
    client.force_login(cast.alice_member)

    response = client.post(f"/licenses/{lic.pk}/auto-renew/", {})  # the box left unticked

    assert response.status_code == 302
    lic.refresh_from_db()
    assert lic.auto_renew is False
    toggled = AuditEvent.objects.get(action="license.auto_renew_changed")
    assert toggled.actor_user == cast.alice_member and toggled.data == {"auto_renew": False}
    assert toggled.object_id == str(lic.pk) and toggled.address == "127.0.0.1"
    assert str(lic.pk) in entitlements(sync(device, credential))

    clock.move_to(END + timedelta(hours=1))
    counts = run_daily_jobs()

    assert (counts["renewed"], counts["expired"]) == (0, 1)
    lic.refresh_from_db()
    assert lic.state == License.State.EXPIRED and lic.ends_at == END
    assert not LicenseRenewal.objects.exists()
    expired = AuditEvent.objects.get(action="license.expired")
    assert expired.object_id == str(lic.pk) and expired.account == carol_account
    assert expired.actor_label == "daily jobs"
    assert str(lic.pk) not in entitlements(sync(device, credential))
    assert run_daily_jobs()["expired"] == 0
    assert AuditEvent.objects.filter(action="license.expired").count() == 1


def test_an_order_line_with_auto_renew_false_expires_at_its_end(cast, alice_api, clock):
    body = {
        "reference": "PO-NO-RENEW",
        "customer": CAROL,
        "lines": [
            {
                "product": "ATTENDANT_CONSOLE",
                "quantity": 5,
                "kind": "subscription",
                "ends_at": END.isoformat(),
                "auto_renew": False,
            }
        ],
    }
    order = alice_api.post(URL, body, format="json")
    assert order.status_code == 201, order.content
    assert alice_api.post(f"{URL}/{order.json()['id']}/unlock").status_code == 200
    lic = License.objects.get(source="PO-NO-RENEW")
    assert lic.state == License.State.ACTIVE and lic.auto_renew is False

    clock.move_to(END + timedelta(hours=1))
    run_daily_jobs()

    lic.refresh_from_db()
    assert lic.state == License.State.EXPIRED and lic.ends_at == END
    assert not LicenseRenewal.objects.exists()
    assert AuditEvent.objects.filter(action="license.expired", object_id=str(lic.pk)).exists()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_daily_runs_at_once_renew_and_expire_each_license_once(cast, carol_account, clock):
    renewing = [subscription(carol_account, cast.console, END) for _ in range(5)]
    ending = [subscription(carol_account, cast.analytics, END, auto_renew=False) for _ in range(3)]
    clock.move_to(END + timedelta(hours=1))

    results = run_together(2, lambda _: run_daily_jobs())

    assert sum(r["renewed"] for r in results) == 5
    assert sum(r["expired"] for r in results) == 3
    assert LicenseRenewal.objects.count() == 5
    for lic in renewing:
        lic.refresh_from_db()
        assert (lic.state, lic.ends_at, lic.care_ends_at) == ("active", RENEWED_END, RENEWED_END)
        assert renewed_events(lic).count() == 1
    for lic in ending:
        lic.refresh_from_db()
        assert lic.state == "expired"
    assert AuditEvent.objects.filter(action="license.expired").count() == 3
    assert sum(r["digests"] for r in results) == 1  # Alice's, once


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_renewals_of_one_license_extend_it_once(cast, carol_account, clock):
    lic = subscription(carol_account, cast.console, END)
    now = END + timedelta(hours=1)
    actor = Actor.system("daily jobs")

    results = run_together(4, lambda _: renew_subscription(license_id=lic.pk, now=now, actor=actor))

    assert sum(1 for r in results if r is not None) == 1
    lic.refresh_from_db()
    assert lic.ends_at == RENEWED_END
    assert LicenseRenewal.objects.get(license=lic).new_ends_at == RENEWED_END
    assert renewed_events(lic).count() == 1
