"""Resending the unlock link and unlocking from the portal."""

import pytest
from django.core import mail
from django.test import Client

from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import AuditEvent, User

from ...conftest import api_client_for
from ..payloads import URL, order_body
from .conftest import (
    INVITATION_LINK,
    SITE,
    UNLOCK_LINK,
    license_states,
    post_with_csrf,
    unlock_path,
)

pytestmark = pytest.mark.django_db


def test_resend_from_the_portal_sends_a_new_link_and_retires_the_old_one(
    cast, place, client, csrf_client, django_capture_on_commit_callbacks
):
    order, old_path = place()
    client.force_login(cast.alice_member)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/orders/{order.pk}/resend/")

    assert response.status_code == 302
    assert len(mail.outbox) == 2
    assert mail.outbox[-1].to == ["orders@alice.example"]
    new_path = unlock_path(mail.outbox[-1])
    assert new_path != old_path
    assert OutboundEmail.objects.filter(kind="order", object_id=str(order.pk)).count() == 2
    assert AuditEvent.objects.filter(action="order.email_resent", object_id=str(order.pk)).exists()

    assert Client().get(old_path).status_code == 404
    assert Client().post(old_path).status_code == 404
    assert "Confirm unlock" in Client().get(new_path).content.decode()
    assert post_with_csrf(csrf_client, new_path).status_code == 200
    assert license_states(order) == {"active"}


def test_resend_of_an_unlocked_order_sends_nothing(
    cast, place, client, csrf_client, django_capture_on_commit_callbacks
):
    order, path = place()
    post_with_csrf(csrf_client, path)
    client.force_login(cast.alice_member)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/orders/{order.pk}/resend/", follow=True)

    assert response.status_code == 200
    assert "already unlocked" in response.content.decode()
    assert len(mail.outbox) == 1
    assert Client().get(path).status_code == 200  # the used link still reports its order


def test_portal_unlock_by_a_member_activates_the_licenses(cast, place, client):
    order, _ = place()
    client.force_login(cast.alice_member)

    response = client.post(f"/orders/{order.pk}/unlock/", {"next": f"/orders/{order.pk}/"})

    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.pk}/"
    assert license_states(order) == {"active"}
    event = AuditEvent.objects.get(action="order.unlocked")
    assert event.actor_user == cast.alice_member


def test_portal_unlock_ignores_an_offsite_next(cast, place, client):
    order, _ = place()
    client.force_login(cast.alice_member)

    response = client.post(f"/orders/{order.pk}/unlock/", {"next": "https://evil.example/"})

    assert response.status_code == 302
    assert response["Location"] == "/orders/"


def test_a_viewer_cannot_resend_or_unlock_in_the_portal(
    cast, place, client, django_capture_on_commit_callbacks
):
    order, path = place()
    client.force_login(cast.alice_viewer)

    assert client.get(f"/orders/{order.pk}/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/orders/{order.pk}/resend/").status_code == 403
        assert client.post(f"/orders/{order.pk}/unlock/").status_code == 403

    assert license_states(order) == {"locked"}
    assert OutboundEmail.objects.filter(object_id=str(order.pk)).count() == 1
    assert len(mail.outbox) == 1
    assert Client().get(path).status_code == 200  # the link was not replaced


def test_another_reseller_gets_404_on_the_order_and_its_actions(
    cast, place, client, django_capture_on_commit_callbacks
):
    order, path = place()
    client.force_login(cast.bob_admin)

    assert client.get(f"/orders/{order.pk}/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/orders/{order.pk}/unlock/").status_code == 404
        assert client.post(f"/orders/{order.pk}/resend/").status_code == 404

    assert license_states(order) == {"locked"}
    assert len(mail.outbox) == 1
    assert Client().get(path).status_code == 200
    assert "PO-U1" not in client.get("/orders/").content.decode()


def test_portal_order_actions_with_bad_ids_are_404_and_get_is_405(cast, place, client):
    order, _ = place()
    client.force_login(cast.alice_member)

    assert client.get("/orders/not-a-uuid/").status_code == 404
    assert client.post("/orders/not-a-uuid/unlock/").status_code == 404
    assert client.post("/orders/00000000-0000-0000-0000-000000000000/resend/").status_code == 404
    assert client.get("/orders/not-a-uuid/unlock/").status_code == 404
    assert client.get(f"/orders/{order.pk}/resend/").status_code == 405
    assert client.put(f"/orders/{order.pk}/unlock/").status_code == 405
    assert license_states(order) == {"locked"}


def test_unlock_invites_a_customer_without_users_once_and_the_invitation_works(
    cast, place, csrf_client, django_capture_on_commit_callbacks
):
    _, path = place()
    assert not User.objects.filter(organization__name="Erin GmbH").exists()

    with django_capture_on_commit_callbacks(execute=True):
        post_with_csrf(csrf_client, path)
    with django_capture_on_commit_callbacks(execute=True):
        post_with_csrf(csrf_client, path)  # a second unlock invites nobody again

    invitations = [m for m in mail.outbox if INVITATION_LINK.search(m.body)]
    assert len(invitations) == 1
    assert OutboundEmail.objects.filter(kind="invitation").count() == 1
    # Nobody at Erin can log in yet: the invitation stands in for the "licenses" e-mail.
    assert not OutboundEmail.objects.filter(kind="licenses_available").exists()
    invitation = invitations[0]
    assert invitation.to == ["it@erin.example"]
    assert "waiting" in invitation.subject
    user = User.objects.get(email="it@erin.example")
    assert user.organization.name == "Erin GmbH"
    assert user.role == User.Role.ADMIN
    links = INVITATION_LINK.findall(invitation.body)
    assert len(links) == 1, invitation.body

    browser = Client()
    form = browser.get(links[0], follow=True)
    assert form.status_code == 200
    assert "Set my password" in form.content.decode()
    set_password_url = form.redirect_chain[-1][0]
    saved = browser.post(
        set_password_url,
        {"new_password1": "a-long-new-passphrase-42", "new_password2": "a-long-new-passphrase-42"},
    )
    assert saved.status_code == 302
    assert saved["Location"] == "/"  # signed in, on the way to the customer's licenses
    assert browser.get("/", follow=True).redirect_chain[-1][0].startswith("/accounts/")

    assert Client().login(username="it@erin.example", password="a-long-new-passphrase-42")
    # The link is single use: once the password is set it no longer works.
    reused = Client().get(links[0], follow=True)
    assert "no longer works" in reused.content.decode()


def test_unlock_for_a_customer_with_users_tells_its_admins_and_invites_nobody(
    cast, place, csrf_client, django_capture_on_commit_callbacks
):
    users_before = User.objects.count()
    order, path = place(
        "PO-CAROL",
        {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"},
    )
    assert order.customer == cast.carol_customer

    with django_capture_on_commit_callbacks(execute=True):
        post_with_csrf(csrf_client, path)

    assert license_states(order) == {"active"}
    assert User.objects.count() == users_before
    assert not OutboundEmail.objects.filter(kind="invitation").exists()
    # The order e-mail to Alice, then one e-mail to Carol's admin (not to its viewer).
    assert [m.to for m in mail.outbox] == [["orders@alice.example"], ["carol@carol.example"]]


def test_another_host_is_refused_and_never_appears_in_an_email(
    cast, place, client, django_capture_on_commit_callbacks
):
    order, path = place()
    evil = {"HTTP_HOST": "evil.example"}

    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(path, **evil).status_code == 400
        assert client.post(path, **evil).status_code == 400
        reset = client.post("/password-reset/", {"email": "alice@alice.example"}, **evil)
        assert reset.status_code == 400
        api = api_client_for(cast.alice_reseller)
        assert api.post(URL, order_body("PO-EVIL"), format="json", **evil).status_code == 400

    assert license_states(order) == {"locked"}
    assert not Order.objects.filter(reference="PO-EVIL").exists()

    # Allowed but different hosts, and a forged forwarded host, do not shape links either.
    member = Client()
    member.force_login(cast.alice_member)
    other_host = {"HTTP_HOST": "localhost", "HTTP_X_FORWARDED_HOST": "evil.example"}
    with django_capture_on_commit_callbacks(execute=True):
        member.post(f"/orders/{order.pk}/resend/", **other_host)
        Client().post("/password-reset/", {"email": "alice@alice.example"}, **other_host)
    latest_order_email = [m for m in mail.outbox if UNLOCK_LINK.search(m.body)][-1]
    browser = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        post_with_csrf(browser, unlock_path(latest_order_email), **other_host)

    assert len(mail.outbox) == 4  # order, re-sent order, password reset, invitation
    for message in mail.outbox:
        parts = [message.subject, message.body] + [body for body, _ in message.alternatives]
        for part in parts:
            assert "evil.example" not in part
            assert "localhost" not in part
        assert SITE in message.body
