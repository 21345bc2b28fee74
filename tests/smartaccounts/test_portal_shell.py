"""The portal shell: login and logout, password reset, landing pages per role, the orders
list, health check, API schema and docs, and static assets."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from smartaccounts.models import User

from ..conftest import api_client_for

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory
SITE = "https://licensing.example.test"
RESET_LINK = re.compile(re.escape(SITE) + r"(/password-reset/[^/\s]+/[^/\s]+/)")
ASSET = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"')


def login(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post("/login/", {"username": email, "password": password}, **extra)


def logged_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def order_body(reference: str) -> dict:
    return {
        "reference": reference,
        "customer": {"name": f"Customer of {reference}", "email": "it@erin.example"},
        "lines": [
            {
                "product": "CALL_RECORDING",
                "quantity": 5,
                "kind": "subscription",
                "ends_at": (timezone.now() + timedelta(days=365)).isoformat(),
            }
        ],
    }


def place_orders(org, prefix: str, count: int) -> None:
    api = api_client_for(org)
    for n in range(count):
        response = api.post("/api/v1/orders", order_body(f"{prefix}-{n:02d}"), format="json")
        assert response.status_code == 201, response.content


# --- Login and logout ----------------------------------------------------------------------


def test_login_with_email_in_any_case_starts_a_session(cast, client):
    response = login(client, "ALICE@Alice.Example")

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert settings.SESSION_COOKIE_NAME in response.cookies
    assert logged_in_user_id(client) == str(cast.alice_admin.pk)
    cast.alice_admin.refresh_from_db()
    assert cast.alice_admin.last_login is not None


def test_login_follows_a_local_next_but_not_an_offsite_one(cast, client):
    local = client.post(
        "/login/?next=/api-keys/", {"username": "alice@alice.example", "password": PASSWORD}
    )
    assert local["Location"] == "/api-keys/"

    offsite = Client().post(
        "/login/?next=https://evil.example/",
        {"username": "alice@alice.example", "password": PASSWORD},
    )
    assert offsite.status_code == 302
    assert offsite["Location"] == "/"


def test_wrong_password_shows_a_form_error_and_starts_no_session(cast, client):
    response = login(client, "alice@alice.example", "not-the-password")

    assert response.status_code == 200
    assert "do not match an active account" in response.content.decode()
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert logged_in_user_id(client) is None
    cast.alice_admin.refresh_from_db()
    assert cast.alice_admin.last_login is None


def test_unknown_user_and_wrong_password_get_the_same_answer(cast, client):
    wrong_password = login(Client(), "alice@alice.example", "not-the-password")
    unknown_user = login(Client(), "nobody@alice.example", "not-the-password")

    assert wrong_password.status_code == unknown_user.status_code == 200
    error = re.compile(r'<ul class="errorlist"[^>]*>.*?</ul>', re.S)
    assert error.findall(wrong_password.content.decode()) == error.findall(
        unknown_user.content.decode()
    )


def test_an_inactive_user_cannot_log_in(cast, client):
    User.objects.filter(pk=cast.alice_member.pk).update(is_active=False)

    response = login(client, "member@alice.example")

    assert response.status_code == 200
    assert logged_in_user_id(client) is None


def test_anonymous_visitors_are_sent_to_login(cast, client):
    for path in ("/", "/orders/", "/api-keys/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/login/?next={path}"


def test_logout_is_a_post(cast, client):
    client.force_login(cast.alice_admin)

    assert client.get("/logout/").status_code == 405
    assert logged_in_user_id(client) == str(cast.alice_admin.pk)

    response = client.post("/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert logged_in_user_id(client) is None
    assert client.get("/")["Location"].startswith("/login/")


def test_the_logout_form_is_in_every_page_with_a_csrf_token(cast, client):
    client.force_login(cast.carol_admin)

    page = client.get("/", follow=True).content.decode()

    form = re.search(r'<form method="post" action="/logout/".*?</form>', page, re.S)
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(0)


# --- Landing pages -------------------------------------------------------------------------


def test_a_partner_lands_on_the_customer_picker(cast, client):
    client.force_login(cast.alice_member)

    response = client.get("/", follow=True)
    page = response.content.decode()

    assert response.redirect_chain == [("/customers/", 302)]
    assert "Carol Corp" in page and "Dave Inc" not in page

    assert "Alice Reseller" in page
    assert 'href="/orders/"' in page
    assert 'href="/api-keys/"' in page
    assert 'href="/admin/"' not in page


def test_a_customer_lands_on_its_smart_account(cast, client):
    client.force_login(cast.carol_viewer)

    response = client.get("/", follow=True)
    page = response.content.decode()

    account = cast.carol_customer.smart_account
    assert response.redirect_chain == [(f"/accounts/{account.pk}/", 302)]

    assert "Carol Corp" in page
    assert "Smart Account" in page
    assert 'href="/orders/"' not in page
    assert 'href="/admin/"' not in page


def test_vendor_staff_land_on_the_back_office_link(cast, client):
    client.force_login(cast.vendor_staff)

    page = client.get("/").content.decode()

    assert "Vendor back office" in page
    assert 'href="/admin/"' in page
    assert 'href="/orders/"' not in page
    assert client.get("/admin/").status_code == 200


def test_a_logged_in_user_opening_login_goes_home(cast, client):
    client.force_login(cast.alice_admin)

    response = client.get("/login/")

    assert response.status_code == 302
    assert response["Location"] == "/"


# --- Password reset ------------------------------------------------------------------------


def test_password_reset_mails_a_site_url_link_that_sets_a_new_password(
    cast, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/password-reset/",
            {"email": "ALICE@alice.example"},
            HTTP_HOST="localhost",
            HTTP_X_FORWARDED_HOST="evil.example",
        )

    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@alice.example"]
    assert "localhost" not in message.body and "evil.example" not in message.body
    links = RESET_LINK.findall(message.body)
    assert len(links) == 1, message.body

    browser = Client()
    form = browser.get(links[0], follow=True)
    assert "Choose a new password" in form.content.decode()
    saved = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand-new-passphrase-7", "new_password2": "brand-new-passphrase-7"},
    )
    assert saved.status_code == 302
    assert saved["Location"] == "/password-reset/done/"

    assert logged_in_user_id(browser) is None  # setting a password does not log in
    assert Client().login(username="alice@alice.example", password="brand-new-passphrase-7")
    assert not Client().login(username="alice@alice.example", password=PASSWORD)
    reused = Client().get(links[0], follow=True)
    assert "no longer works" in reused.content.decode()


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(cast, client):
    response = client.post("/password-reset/", {"email": "nobody@nowhere.example"})

    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    assert mail.outbox == []


def test_a_weak_new_password_is_refused(cast, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/password-reset/", {"email": "alice@alice.example"})
    link = RESET_LINK.findall(mail.outbox[0].body)[0]
    form = client.get(link, follow=True)

    response = client.post(
        form.redirect_chain[-1][0], {"new_password1": "123", "new_password2": "123"}
    )

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert Client().login(username="alice@alice.example", password=PASSWORD)


# --- Orders list ---------------------------------------------------------------------------


def test_the_orders_page_lists_only_the_partners_orders_paginated(cast, client):
    place_orders(cast.alice_reseller, "A", 30)
    place_orders(cast.bob_reseller, "B", 2)
    client.force_login(cast.alice_viewer)

    first = client.get("/orders/").content.decode()
    second = client.get("/orders/?page=2").content.decode()

    refs_first = set(re.findall(r">(A-\d\d)</a>", first))
    refs_second = set(re.findall(r">(A-\d\d)</a>", second))
    assert len(refs_first) == 25 and len(refs_second) == 5
    assert refs_first | refs_second == {f"A-{n:02d}" for n in range(30)}
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert "B-00" not in first + second and "B-01" not in first + second
    # A viewer sees no action buttons.
    assert "Re-send e-mail" not in first


def test_the_orders_page_filters_by_state_and_search(cast, client):
    place_orders(cast.alice_reseller, "A", 3)
    client.force_login(cast.alice_member)

    found = client.get("/orders/?q=A-01").content.decode()
    unlocked = client.get("/orders/?state=unlocked").content.decode()

    assert re.findall(r">(A-\d\d)</a>", found) == ["A-01"]
    assert re.findall(r">(A-\d\d)</a>", unlocked) == []
    assert "Re-send e-mail" in client.get("/orders/").content.decode()


def test_the_orders_page_is_404_for_customers(cast, client):
    place_orders(cast.alice_reseller, "A", 1)
    order_id = cast.alice_reseller.orders_placed.get().pk
    client.force_login(cast.carol_admin)

    assert client.get("/orders/").status_code == 404
    assert client.get(f"/orders/{order_id}/").status_code == 404


def test_the_orders_page_needs_a_bounded_number_of_queries(
    cast, client, django_assert_max_num_queries
):
    place_orders(cast.alice_reseller, "A", 30)
    client.force_login(cast.alice_member)

    with django_assert_max_num_queries(8):
        response = client.get("/orders/")

    assert response.status_code == 200
    assert len(re.findall(r">(A-\d\d)</a>", response.content.decode())) == 25


# --- Health, API schema and docs, static assets -------------------------------------------


def test_healthz_answers_json_with_one_query(db, client, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert client.post("/healthz").status_code == 405


def test_the_openapi_schema_holds_the_order_paths(db, client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/unlock",
        "/api/v1/resellers",
    ):
        assert path in paths, sorted(paths)
    assert {"get", "post"} <= set(paths["/api/v1/orders"])
    assert "post" in paths["/api/v1/orders/{order_id}/unlock"]
    assert "get" not in paths["/api/v1/orders/{order_id}/unlock"]


def test_the_api_docs_use_only_local_assets(db, client):
    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assets = ASSET.findall(page)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith(("/static/", "/api/v1/docs/?script")), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        served.close()
    assert not re.search(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', page)
    assert not re.search(r"@import\s+url\(\s*[\"']?(?:https?:)?//", page)


def test_the_base_pages_stylesheets_and_scripts_are_served(db, client):
    page = client.get("/login/").content.decode()

    assets = ASSET.findall(page)
    assert any("htmx" in a for a in assets), assets
    assert any(a.endswith(".css") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
        body = b"".join(response.streaming_content)
        response.close()
        assert len(body) > 100, asset
