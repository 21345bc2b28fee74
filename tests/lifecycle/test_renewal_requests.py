"""A customer asks its partner to renew a license ending within 90 days (issue 20): the
partner of record is e-mailed through the outbox and sees "customer asked to renew" on its
renewals dashboard; once per license and term; audited."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from lifecycle.models import RenewalRequest
from lifecycle.renewal_requests import ask_partner_to_renew
from notifications.models import OutboundEmail
from smartaccounts.actors import Actor
from smartaccounts.errors import AccountError
from smartaccounts.models import AuditEvent, License

from ..factories import LicenseFactory

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ending(cast) -> License:
    """Carol's subscription ending in 30 days (Alice serves Carol)."""
    return LicenseFactory(
        account=cast.carol_customer.smart_account,
        product=cast.recording,
        kind=License.Kind.SUBSCRIPTION,
        ends_at=timezone.now() + timedelta(days=30),
        care_ends_at=timezone.now() + timedelta(days=30),
    )


def ask(client: Client, lic: License):
    return client.post(f"/licenses/{lic.pk}/ask-renewal/")


def test_the_customer_asks_and_the_partner_is_emailed_once(
    cast, ending, django_capture_on_commit_callbacks
):
    client = login(cast.carol_admin)

    with django_capture_on_commit_callbacks(execute=True):
        first = ask(client, ending)
    with django_capture_on_commit_callbacks(execute=True):
        again = ask(client, ending)

    assert first.status_code == again.status_code == 302
    assert first["Location"] == f"/accounts/{ending.account_id}/?expand=CALL_RECORDING"
    request = RenewalRequest.objects.get()
    assert request.partner == cast.alice_reseller
    assert request.period_ends_at == ending.ends_at
    assert request.requested_by == cast.carol_admin
    assert OutboundEmail.objects.filter(kind="renewal_request").count() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["orders@alice.example"]
    assert "Carol Corp asks you to renew Call Recording" in message.subject
    assert "customer asked to renew" in message.body
    events = AuditEvent.objects.filter(action="license.renewal_requested")
    assert events.count() == 1
    assert events.get().data["partner"] == "Alice Reseller"
    told = [str(m) for m in client.get(first["Location"]).context["messages"]]
    assert any("already" in m for m in told)


def test_the_partners_dashboard_marks_the_license(cast, ending):
    ask(login(cast.carol_admin), ending)

    for sort in ("ends", "customer"):
        page = login(cast.alice_admin).get(f"/renewals/?sort={sort}").content.decode()
        assert "customer asked to renew" in page, sort


def test_the_dashboard_marks_nothing_before_anyone_asks(cast, ending):
    page = login(cast.alice_admin).get("/renewals/").content.decode()

    assert "Call Recording" in page
    assert "customer asked to renew" not in page


def test_after_a_renewal_the_next_term_may_be_asked_about_again(cast, ending):
    actor = Actor.for_user(cast.carol_admin, "192.0.2.1")
    ask_partner_to_renew(license=ending, actor=actor)
    License.objects.filter(pk=ending.pk).update(
        ends_at=ending.ends_at + timedelta(days=45), care_ends_at=None
    )
    ending.refresh_from_db()

    _, new = ask_partner_to_renew(license=ending, actor=actor)

    assert new
    assert RenewalRequest.objects.count() == 2


def test_a_license_not_ending_soon_cannot_be_asked_about(cast):
    far = LicenseFactory(
        account=cast.carol_customer.smart_account,
        product=cast.recording,
        care_ends_at=timezone.now() + timedelta(days=200),
    )

    with pytest.raises(AccountError):
        ask_partner_to_renew(license=far, actor=Actor.for_user(cast.carol_admin, "192.0.2.1"))
    assert not RenewalRequest.objects.exists()


def test_the_button_shows_for_the_customer_on_licenses_ending_soon_only(cast, ending):
    LicenseFactory(
        account=cast.carol_customer.smart_account,
        product=cast.console,
        care_ends_at=timezone.now() + timedelta(days=200),
    )
    account = f"/accounts/{ending.account_id}/"

    soon = login(cast.carol_admin).get(f"{account}?expand=CALL_RECORDING").content.decode()
    later = login(cast.carol_admin).get(f"{account}?expand=ATTENDANT_CONSOLE").content.decode()
    partner = login(cast.alice_admin).get(f"{account}?expand=CALL_RECORDING").content.decode()
    fragment = login(cast.carol_admin).get(f"{account}licenses/CALL_RECORDING/").content.decode()

    assert f'action="/licenses/{ending.pk}/ask-renewal/"' in soon
    assert f'action="/licenses/{ending.pk}/ask-renewal/"' in fragment
    assert "Ask my partner to renew" not in later
    assert "Ask my partner to renew" not in partner


@pytest.mark.parametrize(("who", "status"), [("carol_viewer", 403), ("bob_admin", 404)])
def test_who_may_not_ask_changes_nothing(cast, ending, who, status):
    response = ask(login(getattr(cast, who)), ending)

    assert response.status_code == status
    assert not RenewalRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="license.renewal_requested").exists()


def test_a_partner_does_not_ask_itself(cast, ending):
    response = ask(login(cast.alice_admin), ending)

    assert response.status_code == 403
    assert not RenewalRequest.objects.exists()


def test_asking_only_posts(cast, ending):
    assert login(cast.carol_admin).get(f"/licenses/{ending.pk}/ask-renewal/").status_code == 405


def test_the_history_says_who_was_asked(cast, ending):
    ask(login(cast.carol_admin), ending)

    page = login(cast.carol_admin).get(f"/accounts/{ending.account_id}/history/").content.decode()

    assert "Asked Alice Reseller to renew Call Recording" in page
