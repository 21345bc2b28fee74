"""Automatic renewal of subscriptions, with time travel: on, off (portal and order line),
twice at once, after a renewal line, perpetual care, the portal toggle and evaluations."""

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.services import run_daily_jobs
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, LicenseRenewal
from smartaccounts.services import renew_subscription

from ..concurrency import run_together
from ..conftest import requires_postgres
from ..factories import LicenseFactory
from ..orders.payloads import URL, renewal_body
from .conftest import at, entitlements, subscription, sync

pytestmark = pytest.mark.django_db

CAROL = {"name": "Carol Corp", "email": "it@carol.example"}
END = at(days=20)  # 2031-03-30 06:00 UTC
RENEWED_END = datetime(2032, 3, 30, 6, 0, tzinfo=UTC)  # END + 12 months


def renewed_events(lic: License):
    return AuditEvent.objects.filter(action="license.renewed", object_id=str(lic.pk))


# --- Renewal on --------------------------------------------------------------------------------


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


# --- Renewal off -------------------------------------------------------------------------------


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


# --- Twice at once (PostgreSQL) ----------------------------------------------------------------


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


# --- Renewal lines from the partner's ordering system ------------------------------------------


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


# --- The portal toggle -------------------------------------------------------------------------


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


# --- Evaluation licenses -----------------------------------------------------------------------


def evaluation_action(client, account, product, **fields):
    return client.post(
        "/admin/smartaccounts/smartaccount/",
        {
            "action": "issue_evaluation",
            "_selected_action": [str(account.pk)],
            "product": product.pk,
            **fields,
        },
    )


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
