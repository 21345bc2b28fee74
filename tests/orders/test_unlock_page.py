"""The e-mail's unlock link `/unlock/<secret>/` (S8), re-sending it, and the portal's own
unlock and re-send buttons."""

import re

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client

from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import AuditEvent, License, User

from ..conftest import api_client_for
from .payloads import URL, order_body

pytestmark = pytest.mark.django_db

SITE = "https://licensing.example.test"
UNLOCK_LINK = re.compile(re.escape(SITE) + r"(/unlock/[^/\s\"<>]+/)")
INVITATION_LINK = re.compile(re.escape(SITE) + r"(/invitation/[^/\s\"<>]+/[^/\s\"<>]+/)")


def unlock_path(message: mail.EmailMessage) -> str:
    """The path of the unlock link in an order e-mail (the text and HTML parts agree)."""
    found = UNLOCK_LINK.findall(message.body)
    assert len(found) == 1, message.body
    assert found[0] in message.alternatives[0][0]
    return found[0]


@pytest.fixture
def place(cast, django_capture_on_commit_callbacks):
    """Place an order as Alice through the API; returns (order, unlock path from the e-mail)."""

    def _place(reference: str = "PO-U1", customer: dict | None = None) -> tuple[Order, str]:
        sent_before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client_for(cast.alice_reseller).post(
                URL, order_body(reference, customer), format="json"
            )
        assert response.status_code == 201, response.content
        assert len(mail.outbox) == sent_before + 1
        return Order.objects.get(pk=response.json()["id"]), unlock_path(mail.outbox[-1])

    return _place


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def post_with_csrf(client: Client, path: str, **extra):
    """GET the page (which sets the CSRF cookie), then POST the form with that token."""
    page = client.get(path, **extra)
    assert page.status_code == 200, page.content
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client.post(path, {"csrfmiddlewaretoken": token}, **extra)


def table_snapshot() -> tuple[list, list]:
    licenses = list(License.objects.order_by("pk").values())
    orders = list(Order.objects.order_by("pk").values())
    return licenses, orders


def license_states(order: Order) -> set[str]:
    return set(License.objects.filter(order_lines__order=order).values_list("state", flat=True))


def test_get_shows_the_order_and_a_confirm_button_without_login_and_changes_nothing(
    cast, place, client
):
    order, path = place()
    before = table_snapshot()
    audit_before = AuditEvent.objects.count()

    for _ in range(5):
        response = client.get(path)
        assert response.status_code == 200

    page = response.content.decode()
    assert "PO-U1" in page
    assert "Erin GmbH" in page
    assert "Call Recording" in page and "Attendant Console" in page
    assert "Confirm unlock" in page
    assert re.search(r'<form method="post"', page)
    assert response.wsgi_request.user.is_anonymous
    assert table_snapshot() == before
    assert AuditEvent.objects.count() == audit_before
    assert license_states(order) == {"locked"}


def test_csrf_checked_post_unlocks_every_license_of_the_order_at_once(
    cast, place, csrf_client, django_capture_on_commit_callbacks
):
    order, path = place()
    other, _ = place("PO-OTHER", {"name": "Other Ltd", "email": "it@other.example"})

    with django_capture_on_commit_callbacks(execute=True):
        response = post_with_csrf(csrf_client, path)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Order PO-U1 unlocked" in page
    assert "Call Recording" in page
    order.refresh_from_db()
    assert order.state == "unlocked"
    assert order.unlocked_at is not None
    assert "Alice Reseller" in order.unlocked_by
    licenses = License.objects.filter(order_lines__order=order)
    assert licenses.count() == 2
    assert set(licenses.values_list("state", flat=True)) == {"active"}
    # Only this order: the capability does not reach any other order.
    other.refresh_from_db()
    assert other.state == "locked"
    assert license_states(other) == {"locked"}
    event = AuditEvent.objects.get(action="order.unlocked")
    assert event.object_id == str(order.pk)
    assert event.actor_user is None and event.actor_api_key is None


def test_post_without_csrf_token_is_403_and_unlocks_nothing(cast, place, csrf_client):
    order, path = place()
    csrf_client.get(path)  # even with the cookie set, the form token is required

    response = csrf_client.post(path, {})

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.state == "locked"
    assert license_states(order) == {"locked"}
    assert not AuditEvent.objects.filter(action="order.unlocked").exists()


def test_a_second_post_is_harmless(cast, place, csrf_client):
    order, path = place()
    post_with_csrf(csrf_client, path)
    unlocked_at = Order.objects.get(pk=order.pk).unlocked_at

    again = post_with_csrf(csrf_client, path)

    assert again.status_code == 200
    assert "already unlocked" in again.content.decode()
    assert Order.objects.get(pk=order.pk).unlocked_at == unlocked_at
    assert license_states(order) == {"active"}
    assert AuditEvent.objects.filter(action="order.unlocked").count() == 1


def test_a_used_link_opened_again_says_already_unlocked(cast, place, csrf_client, client):
    _, path = place()
    post_with_csrf(csrf_client, path)

    response = client.get(path)

    assert response.status_code == 200
    page = response.content.decode()
    assert "already unlocked" in page
    assert "Confirm unlock" not in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_secret_is_a_404_page(cast, place, client, method):
    order, _ = place()

    response = getattr(client, method)("/unlock/not-the-right-secret-at-all/")

    assert response.status_code == 404
    assert "This unlock link is not valid" in response.content.decode()
    assert response["Referrer-Policy"] == "same-origin"
    assert Order.objects.get(pk=order.pk).state == "locked"


def test_the_unlock_page_creates_no_session_and_no_login(
    cast, place, csrf_client, django_capture_on_commit_callbacks
):
    _, path = place()

    page = csrf_client.get(path)
    with django_capture_on_commit_callbacks(execute=True):
        done = post_with_csrf(csrf_client, path)

    for response in (page, done):
        assert settings.SESSION_COOKIE_NAME not in response.cookies
        assert response.wsgi_request.user.is_anonymous
    assert settings.SESSION_COOKIE_NAME not in csrf_client.cookies
    assert not Session.objects.exists()
    # The invited customer user is not logged in by the unlock either.
    invited = User.objects.get(email="it@erin.example")
    assert invited.last_login is None
    assert not invited.has_usable_password()


def test_the_unlock_page_leaks_no_referrer_and_is_not_cached(cast, place, csrf_client):
    _, path = place()

    shown = csrf_client.get(path)
    done = post_with_csrf(csrf_client, path)
    unknown = csrf_client.get("/unlock/not-the-right-secret-at-all/")

    for response in (shown, done, unknown):
        assert response["Referrer-Policy"] == "same-origin"
        assert "no-store" in response["Cache-Control"]
        # `same-origin` keeps the secret in Referer only for this site's own requests, so the
        # page must load nothing from another site: every src, href and action is relative
        # (not protocol-relative) or this site's.
        page = response.content.decode()
        urls = re.findall(
            r"""\b(?:src|href|action|srcset|poster|data)\s*=\s*["']([^"']*)["']""", page
        )
        urls += re.findall(r"""url\(\s*["']?([^"')]+)""", page)  # inline styles
        urls += re.findall(r"""@import\s+["']([^"']+)""", page)
        assert any(url.startswith("/static/") for url in urls), urls  # the check sees assets
        for url in urls:
            same_site = url.startswith(SITE + "/") or url == SITE
            relative = not re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|\\\\)", url)
            assert relative or same_site, f"{url!r} leaves the site"


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
