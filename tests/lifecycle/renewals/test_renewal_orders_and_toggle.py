"""Renewal lines from the partner's ordering system, the portal toggle, evaluation licenses."""

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.services import run_daily_jobs
from smartaccounts.models import AuditEvent, License, LicenseRenewal

from ...factories import LicenseFactory
from ...orders.payloads import URL, renewal_body
from ..conftest import at, entitlements, subscription, sync
from .conftest import CAROL, END, RENEWED_END, evaluation_action, renewed_events

pytestmark = pytest.mark.django_db


def test_a_renewal_line_before_the_end_is_that_periods_renewal(
    cast, alice_api, carol_account, clock
):
    lic = subscription(carol_account, cast.console, END)
    clock.move_to(END - timedelta(days=5))

    response = alice_api.post(
        URL, renewal_body("PO-REN", lic.pk, CAROL, ends_at=RENEWED_END.isoformat()), format="json"
    )

    assert response.status_code == 201, response.content
    renewal = LicenseRenewal.objects.get(license=lic)
    assert renewal.source == LicenseRenewal.Source.ORDER and renewal.period_ends_at == END
    clock.move_to(END + timedelta(hours=1))
    counts = run_daily_jobs()
    assert (counts["renewed"], counts["expired"]) == (0, 0)
    lic.refresh_from_db()
    assert lic.ends_at == RENEWED_END and lic.state == License.State.ACTIVE
    assert LicenseRenewal.objects.filter(license=lic).count() == 1
    event = renewed_events(lic).get()  # the order's, none from the job
    assert event.data["order"] == "PO-REN" and event.actor_api_key is not None

    # The period after that one renews itself as usual.
    clock.move_to(RENEWED_END + timedelta(hours=1))
    assert run_daily_jobs()["renewed"] == 1
    lic.refresh_from_db()
    assert lic.ends_at == datetime(2033, 3, 30, 6, tzinfo=UTC)


def test_a_renewal_line_for_a_subscription_carries_its_care_along(
    cast, alice_api, carol_account, clock, online_server, device
):
    lic = subscription(carol_account, cast.console, END)
    _, credential = online_server((lic, 4))
    clock.move_to(END - timedelta(days=5))
    response = alice_api.post(
        URL, renewal_body("PO-REN", lic.pk, CAROL, ends_at=RENEWED_END.isoformat()), format="json"
    )
    assert response.status_code == 201, response.content

    clock.move_to(END + timedelta(hours=1))
    run_daily_jobs()

    lic.refresh_from_db()
    assert lic.care_ends_at == RENEWED_END
    assert entitlements(sync(device, credential))[str(lic.pk)]["care_status"] == "active"


def test_a_renewal_line_equal_to_the_auto_renewed_end_is_accepted_and_changes_nothing(
    cast, alice_api, carol_account, clock
):
    lic = subscription(carol_account, cast.console, END)
    clock.move_to(END + timedelta(hours=1))
    run_daily_jobs()
    lic.refresh_from_db()
    before = License.objects.filter(pk=lic.pk).values().get()

    clock.move_to(END + timedelta(days=2))
    response = alice_api.post(
        URL,
        renewal_body("PO-LATE", lic.pk, CAROL, ends_at=RENEWED_END.isoformat()),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["action"] == "renewal"
    assert License.objects.filter(pk=lic.pk).values().get() == before
    assert list(LicenseRenewal.objects.values_list("source", flat=True)) == ["automatic"]
    assert run_daily_jobs()["renewed"] == 0
    lic.refresh_from_db()
    assert lic.ends_at == RENEWED_END


def test_perpetual_care_is_not_renewed_by_the_job(cast, carol_account, clock):
    care_end = at(days=5)
    lic = LicenseFactory(
        account=carol_account, product=cast.recording, kind="perpetual", care_ends_at=care_end
    )
    assert lic.auto_renew is True  # the model default: the job must still leave care alone

    clock.move_to(at(days=6))
    counts = run_daily_jobs()

    assert (counts["renewed"], counts["expired"]) == (0, 0)
    lic.refresh_from_db()
    assert lic.care_ends_at == care_end and lic.state == License.State.ACTIVE
    assert lic.care_status(at(days=6)) == License.CareStatus.EXPIRED
    assert not LicenseRenewal.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="license.").exists()


def test_a_partner_member_turns_renewal_off_and_on_again(cast, carol_account, client):
    lic = subscription(carol_account, cast.console, END)
    client.force_login(cast.alice_member)

    off = client.post(f"/licenses/{lic.pk}/auto-renew/")
    lic.refresh_from_db()
    assert lic.auto_renew is False
    on = client.post(f"/licenses/{lic.pk}/auto-renew/", {"auto_renew": "on"})
    lic.refresh_from_db()
    assert lic.auto_renew is True

    for response in (off, on):
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/{carol_account.pk}/?expand=ATTENDANT_CONSOLE"
    changes = AuditEvent.objects.filter(action="license.auto_renew_changed").order_by("created_at")
    assert sorted(e.data["auto_renew"] for e in changes) == [False, True]


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice_viewer", 403), ("carol_admin", 403), ("carol_viewer", 403), ("bob_admin", 404)],
)
def test_the_toggle_is_refused_to_viewers_customers_and_other_tenants(
    cast, carol_account, client, who, status
):
    lic = subscription(carol_account, cast.console, END)
    client.force_login(getattr(cast, who))

    assert client.post(f"/licenses/{lic.pk}/auto-renew/").status_code == status

    lic.refresh_from_db()
    assert lic.auto_renew is True
    assert not AuditEvent.objects.filter(action="license.auto_renew_changed").exists()


def test_the_toggle_needs_a_post_a_good_id_and_a_subscription(cast, carol_account, client):
    lic = subscription(carol_account, cast.console, END)
    perpetual = LicenseFactory(account=carol_account, product=cast.recording, kind="perpetual")

    assert client.post(f"/licenses/{lic.pk}/auto-renew/").status_code == 302  # to the login
    client.force_login(cast.alice_member)
    assert client.get(f"/licenses/{lic.pk}/auto-renew/").status_code == 405
    assert client.post("/licenses/not-a-uuid/auto-renew/").status_code == 404
    assert (
        client.post("/licenses/00000000-0000-0000-0000-000000000000/auto-renew/").status_code == 404
    )
    response = client.post(f"/licenses/{perpetual.pk}/auto-renew/", follow=True)
    assert response.status_code == 200
    assert "Only subscriptions renew automatically." in response.content.decode()

    lic.refresh_from_db()
    perpetual.refresh_from_db()
    assert lic.auto_renew is True and perpetual.auto_renew is True
    assert not AuditEvent.objects.filter(action="license.auto_renew_changed").exists()


def test_an_evaluation_from_the_admin_expires_after_its_days_and_never_renews(
    cast, carol_account, client, clock
):
    client.force_login(cast.vendor_staff)

    form = evaluation_action(client, carol_account, cast.analytics)
    assert form.status_code == 200 and "Issue evaluation licenses" in form.content.decode()
    assert not License.objects.exists()
    response = evaluation_action(
        client, carol_account, cast.analytics, apply="1", quantity=5, days=14
    )

    assert response.status_code == 302
    lic = License.objects.get()
    assert (lic.account, lic.product, lic.kind) == (carol_account, cast.analytics, "subscription")
    assert (lic.state, lic.quantity, lic.source, lic.auto_renew) == (
        "active",
        5,
        "evaluation",
        False,
    )
    assert lic.ends_at == lic.care_ends_at == at(days=14)
    issued = AuditEvent.objects.get(action="license.evaluation_issued")
    assert issued.actor_user == cast.vendor_staff and issued.account == carol_account
    assert issued.object_id == str(lic.pk) and issued.address == "127.0.0.1"

    clock.move_to(at(days=13))
    assert run_daily_jobs()["expired"] == 0
    clock.move_to(at(days=14, hours=1))
    counts = run_daily_jobs()

    assert (counts["renewed"], counts["expired"]) == (0, 1)
    lic.refresh_from_db()
    assert lic.state == License.State.EXPIRED and lic.ends_at == at(days=14)
    assert not LicenseRenewal.objects.exists()
    clock.move_to(at(days=40))
    assert run_daily_jobs()["renewed"] == 0


def test_only_staff_issue_evaluations(cast, carol_account, client):
    client.force_login(cast.alice_admin)

    response = evaluation_action(
        client, carol_account, cast.analytics, apply="1", quantity=5, days=30
    )

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not License.objects.exists()


def test_an_invalid_evaluation_form_issues_nothing(cast, carol_account, client):
    client.force_login(cast.vendor_staff)

    response = evaluation_action(
        client, carol_account, cast.billing, apply="1", quantity=0, days=365
    )

    assert response.status_code == 200  # the form again, with its errors
    assert response.context["form"].errors.keys() == {"product", "quantity", "days"}
    assert not License.objects.exists()
