"""Customers are told: once an order is unlocked (by its e-mail link, in the portal or through
the API) the customer's admins get one e-mail that the licenses are in their Smart Account; a
customer nobody of which can log in yet gets the invitation instead. Through the outbox, once
per unlock."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import AuditEvent, User

from ..conftest import api_client_for
from ..factories import UserFactory
from .payloads import URL, order_body

pytestmark = pytest.mark.django_db

SITE = "https://licensing.example.test"
CAROL = {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"}
UNLOCK_LINK = re.compile(re.escape(SITE) + r"(/unlock/[^/\s\"<>]+/)")
INVITATION_LINK = re.compile(re.escape(SITE) + r"(/invitation/[^/\s\"<>]+/[^/\s\"<>]+/)")


def licenses_emails() -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if "New licenses are available" in m.subject]


def invitations() -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if INVITATION_LINK.search(m.body)]


@pytest.fixture
def place(cast, django_capture_on_commit_callbacks):
    def _place(reference: str = "PO-C1", customer: dict | None = None) -> tuple[Order, str]:
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client_for(cast.alice_reseller).post(
                URL, order_body(reference, customer or CAROL), format="json"
            )
        assert response.status_code == 201, response.content
        path = UNLOCK_LINK.search(mail.outbox[-1].body)[1]
        return Order.objects.get(pk=response.json()["id"]), path

    return _place


def unlock_by_link(path: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get(path)
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert client.post(path, {"csrfmiddlewaretoken": token}).status_code == 200


@pytest.fixture
def unlock(cast, django_capture_on_commit_callbacks):
    """Unlock an order by one of its three paths, running the outbox as a worker would."""

    def _unlock(order: Order, path: str, how: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            if how == "link":
                unlock_by_link(path)
            elif how == "portal":
                client = Client()
                client.force_login(cast.alice_member)
                assert client.post(f"/orders/{order.pk}/unlock/").status_code == 302
            else:
                response = api_client_for(cast.alice_reseller).post(f"{URL}/{order.pk}/unlock")
                assert response.status_code == 200

    return _unlock


@pytest.mark.parametrize("how", ["link", "portal", "api"])
def test_the_customers_admins_get_one_email_whichever_way_the_order_is_unlocked(
    cast, place, unlock, how
):
    second_admin = UserFactory(email="boss@carol.example", organization=cast.carol_customer)
    UserFactory(email="gone@carol.example", organization=cast.carol_customer, is_active=False)
    order, path = place()

    unlock(order, path, how)
    unlock(order, path, how)  # a second unlock tells nobody again

    sent = licenses_emails()
    assert len(sent) == 1
    assert sorted(sent[0].to) == sorted(["carol@carol.example", second_admin.email])
    assert OutboundEmail.objects.filter(kind="licenses_available").count() == 1
    assert not invitations()
    message = sent[0]
    assert "Carol Corp" in message.subject
    assert "Call Recording" in message.body and "50 channels" in message.body
    assert "Attendant Console" in message.body
    assert "Alice Reseller" in message.body
    account_url = f"{SITE}/accounts/{order.account_id}/"
    assert account_url in message.body
    assert account_url in message.alternatives[0][0]
    assert re.search(r"unlocked \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", message.body)
    event = AuditEvent.objects.get(action="order.customer_notified")
    assert event.object_id == str(order.pk) and event.account == order.account


def test_the_emails_link_opens_the_customers_licenses(cast, place, unlock):
    order, path = place()
    unlock(order, path, "link")
    link = re.search(re.escape(SITE) + r"(/accounts/[^/\s]+/)", licenses_emails()[0].body)[1]

    anonymous = Client().get(link)
    client = Client()
    client.force_login(cast.carol_admin)
    page = client.get(link)

    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert page.status_code == 200
    assert "Call Recording" in page.content.decode()


def test_without_admins_who_can_log_in_the_other_users_are_told(cast, place, unlock):
    cast.carol_admin.set_unusable_password()  # invited, never signed up
    cast.carol_admin.save()
    order, path = place()

    unlock(order, path, "api")

    assert [m.to for m in licenses_emails()] == [["viewer@carol.example"]]


def test_a_first_time_customer_gets_the_invitation_instead(cast, place, unlock):
    order, path = place("PO-NEW", {"name": "Erin GmbH", "email": "it@erin.example"})

    unlock(order, path, "portal")
    unlock(order, path, "portal")

    assert licenses_emails() == []
    assert not OutboundEmail.objects.filter(kind="licenses_available").exists()
    assert len(invitations()) == 1
    invitation = invitations()[0]
    assert invitation.to == ["it@erin.example"]
    assert "waiting" in invitation.subject
    assert "Alice Reseller has delivered licenses to Erin GmbH" in invitation.body
    assert User.objects.get(email="it@erin.example").role == User.Role.ADMIN


def test_an_invited_customer_who_has_not_signed_up_is_invited_again_by_the_next_order(
    cast, place, unlock
):
    first, first_path = place("PO-NEW-1", {"name": "Erin GmbH", "email": "it@erin.example"})
    unlock(first, first_path, "link")
    second, second_path = place("PO-NEW-2", {"name": "Erin GmbH", "email": "it@erin.example"})
    assert second.customer == first.customer

    unlock(second, second_path, "link")

    assert licenses_emails() == []
    assert [m.to for m in invitations()] == [["it@erin.example"], ["it@erin.example"]]
    assert User.objects.filter(organization=first.customer).count() == 1
    # Once signed up, the next order brings the "licenses available" e-mail instead.
    user = User.objects.get(email="it@erin.example")
    user.set_password("a-long-new-passphrase-42")
    user.save()
    third, third_path = place("PO-NEW-3", {"name": "Erin GmbH", "email": "it@erin.example"})
    unlock(third, third_path, "link")
    assert [m.to for m in licenses_emails()] == [["it@erin.example"]]
    assert len(invitations()) == 2


def test_an_order_made_only_of_renewals_tells_nobody(
    cast, place, unlock, django_capture_on_commit_callbacks
):
    order, path = place()
    unlock(order, path, "api")
    lic = order.lines.first().license
    sent = len(mail.outbox)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(cast.alice_reseller).post(
            URL,
            {
                "reference": "PO-RENEW",
                "customer": CAROL,
                "lines": [{"renews": str(lic.pk), "care_ends_at": "2031-01-01T00:00:00Z"}],
            },
            format="json",
        )

    assert response.status_code == 201
    assert len(licenses_emails()) == 1  # still only the first unlock's
    assert len(mail.outbox) == sent + 1  # the partner's order e-mail only


def test_the_order_email_shows_times_in_one_format(cast, place):
    place()

    message = mail.outbox[-1]
    assert re.search(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", message.body), message.body
    assert re.search(r"care to \d{4}-\d\d-\d\d\b", message.body)
    assert re.search(r"\d\d:\d\d:\d\d", message.body) is None  # never seconds
    html = message.alternatives[0][0]
    assert re.search(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", html)
