"""The unlock page an order e-mail links to."""

import re

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session

from orders.models import Order
from smartaccounts.models import AuditEvent, License, User

from .conftest import SITE, license_states, post_with_csrf, table_snapshot

pytestmark = pytest.mark.django_db


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
