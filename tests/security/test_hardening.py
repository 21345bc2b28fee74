"""Deployment hardening: headers, deploy checks, login lockout, password hashing, sessions."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import identify_hasher, make_password
from django.test import override_settings

from licensing_portal.settings import base
from tests.deploy import KEYS_APART, METRICS_TOKEN, deploy_check

pytestmark = pytest.mark.django_db

MAIN_PAGES = ["/login/", "/password-reset/", "/api/v1/docs/", "/healthz"]


@pytest.mark.parametrize("path", MAIN_PAGES)
def test_security_headers_on_the_main_pages(client, path):
    response = client.get(path)

    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert "unsafe" not in directives["script-src"] and "unsafe-eval" not in csp
    if path != "/api/v1/docs/":  # Swagger UI styles its elements from script; only there
        assert "unsafe-inline" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_logged_in_pages_carry_the_headers_too(cast, client):
    client.force_login(cast.alice_admin)
    response = client.get("/customers/")

    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_SSL_REDIRECT=True)
def test_https_gets_hsts_and_plain_http_is_redirected(client):
    secure = client.get("/login/", secure=True)
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")
    plain = client.get("/login/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    # Load balancers probe /healthz over plain HTTP.
    assert client.get("/healthz").status_code == 200


def test_production_settings_pass_the_deploy_checks(tmp_path, vendor_root):
    # The root's public half only (its private half stays with vendor staff), keys apart from
    # the secret key and a metrics token (tests/tokens/test_deploy_checks.py: E002, W001-3).
    result = deploy_check(
        tmp_path,
        "--fail-level",
        "WARNING",
        LICENSE_ROOT_PUBLIC_KEY=vendor_root,
        METRICS_TOKEN=METRICS_TOKEN,
        **KEYS_APART,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_defaults_are_secure():
    assert base.SESSION_COOKIE_HTTPONLY is True
    assert base.SESSION_COOKIE_AGE <= 60 * 60 * 12  # sessions expire within a working day
    assert base.X_FRAME_OPTIONS == "DENY"
    assert base.SECURE_CONTENT_TYPE_NOSNIFF is True


def test_passwords_are_hashed_with_argon2_in_production_settings():
    with override_settings(PASSWORD_HASHERS=base.PASSWORD_HASHERS):
        assert identify_hasher(make_password("correct horse")).algorithm == "argon2"


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3)
def test_login_locks_out_after_repeated_failures_with_the_same_answer_for_unknown_users(
    cast, client
):
    def attempt(email, password):
        return client.post("/login/", {"username": email, "password": password})

    unknown = attempt("nobody@nowhere.example", "guess-1")
    wrong = attempt("alice@alice.example", "guess-1")
    assert unknown.status_code == wrong.status_code == 200
    assert b"do not match" in unknown.content and b"do not match" in wrong.content

    attempt("alice@alice.example", "guess-2")
    locked = attempt("alice@alice.example", "guess-3")
    assert locked.status_code == 429
    # Even the right password is refused while locked out, and no session is made.
    right = attempt("alice@alice.example", "pw-for-tests-123")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username="alice@alice.example").exists()


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3, AXES_COOLOFF_TIME=timedelta(0))
def test_a_successful_login_works_when_not_locked(cast, client):
    response = client.post(
        "/login/", {"username": "alice@alice.example", "password": "pw-for-tests-123"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(cast.alice_admin.pk)


def test_database_outage_in_the_api_is_a_clean_503(cast, monkeypatch):
    from django.db import OperationalError

    from orders import api as orders_api

    from ..conftest import api_client_for

    def db_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    client = api_client_for(cast.alice_reseller)
    monkeypatch.setattr(orders_api, "order_summaries_for", db_gone)
    response = client.get("/api/v1/orders")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"]
