"""The device endpoints are served by the lean handler (licensing_portal/wsgi.py): none of the
portal's middleware runs for them, yet they keep request ids, the security headers, the edge
refusals and problem+json errors. Portal paths keep everything."""

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from csp.middleware import CSPMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.test import override_settings

from kernel.middleware import is_machine_path, wants_problem_json
from licensing_portal.wsgi import build_application

from ..wsgi_app import WsgiResponse, call

pytestmark = pytest.mark.django_db

PORTAL_HOOKS = [
    (SessionMiddleware, "process_request"),
    (CsrfViewMiddleware, "process_view"),
    (AuthenticationMiddleware, "process_request"),
    (MessageMiddleware, "process_request"),
    (CSPMiddleware, "process_response"),
]


@pytest.fixture
def portal_hooks() -> Iterator[dict[str, mock.MagicMock]]:
    """Spies on the portal's middleware: how often each ran."""
    spies: dict[str, mock.MagicMock] = {}
    patches = []
    for cls, name in PORTAL_HOOKS:
        patcher = mock.patch.object(cls, name, autospec=True, side_effect=getattr(cls, name))
        spies[cls.__name__] = patcher.start()
        patches.append(patcher)
    yield spies
    for patcher in patches:
        patcher.stop()


def ran(spies: dict[str, mock.MagicMock]) -> set[str]:
    return {name for name, spy in spies.items() if spy.called}


def assert_machine_headers(response: WsgiResponse, *, refused: bool = False) -> None:
    assert response.header("X-Request-ID")
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("Referrer-Policy") == "same-origin"
    # As on the portal, an edge refusal answers before the frame-options middleware runs.
    assert response.header("X-Frame-Options") == (None if refused else "DENY")
    assert response.header("Content-Security-Policy") is None
    assert "cookie" not in (response.header("Vary") or "").lower()
    assert response.cookies == []


def activate(token: str) -> WsgiResponse:
    body = {"token": token, "fingerprint": "fp-1", "hostname": "pbx-1.local", "version": "W26"}
    return call("/api/v1/activation", method="POST", body=body)


def sync(credential: str, **extra: Any) -> WsgiResponse:
    return call(
        "/api/v1/activation/sync",
        method="POST",
        body={"fingerprint": "fp-1", "version": "W26", "usage": {}},
        headers={"Authorization": f"Bearer {credential}", **extra},
    )


def test_the_device_paths_and_probes_are_lean_and_nothing_else_is() -> None:
    for path in (
        "/api/v1/activation",
        "/api/v1/activation/sync",
        "/api/v1/keys",
        "/healthz",
        "/readyz",
        "/internal/metrics",
    ):
        assert is_machine_path(path), path
    for path in ("/", "/login/", "/api/v1/orders", "/api/v1/servers/x/offline-activation"):
        assert not is_machine_path(path), path


def test_a_machine_path_ends_on_a_slash_boundary() -> None:
    for path in (
        "/api/v1/activationx",
        "/api/v1/activation-sync",
        "/api/v1/keysx",
        "/healthzz",
        "/readyz.json",
        "/internals",
    ):
        assert not is_machine_path(path), path
    assert is_machine_path("/api/v1/activation/sync/")
    # Only the whole API answers problem+json beside them, on the same boundary.
    assert wants_problem_json("/api/v1/orders") and wants_problem_json("/api")
    assert not wants_problem_json("/apidocs") and not wants_problem_json("/healthzz")


def test_a_lookalike_path_is_served_by_the_portal_handler(portal_hooks):
    """ "/api/v1/keysx" is no machine path: the full middleware runs (and it is an API 404)."""
    response = call("/api/v1/keysx")

    assert response.status == 404
    assert response.header("Content-Type") == "application/problem+json"
    assert "SessionMiddleware" in ran(portal_hooks)
    for spy in portal_hooks.values():
        spy.reset_mock()
    assert call("/api/v1/keys").status == 200
    assert ran(portal_hooks) == set()


def test_activation_and_sync_run_none_of_the_portal_middleware(
    cast, perpetual, pending_server, token_for, portal_hooks
):
    token = token_for(pending_server, cast.recording, 20)

    activated = activate(token)
    # A browser's session cookie changes nothing on the machine path.
    synced = sync(activated.json()["credential"], Cookie="sessionid=whatever; csrftoken=x")

    assert activated.status == 201, activated.body
    assert synced.status == 200, synced.body
    assert ran(portal_hooks) == set()
    for response in (activated, synced):
        assert_machine_headers(response)
        assert "no-store" in response.header("Cache-Control")
    assert synced.header("ETag")
    assert sync(activated.json()["credential"], If_None_Match=synced.header("ETag")).status == 304


def test_the_public_keys_keep_their_caching_and_lose_the_portal(portal_hooks):
    response = call("/api/v1/keys")

    assert response.status == 200
    assert response.header("Cache-Control").startswith("public, max-age=")
    assert_machine_headers(response)
    assert ran(portal_hooks) == set()


def test_a_portal_request_still_gets_every_middleware(portal_hooks):
    response = call("/login/")

    assert response.status == 200
    assert ran(portal_hooks) == {name for name in portal_hooks}
    assert response.header("Content-Security-Policy")
    assert response.header("X-Request-ID")
    assert any(cookie.strip().startswith("csrftoken=") for cookie in response.cookies)
    assert "Cookie" in response.header("Vary")


def test_errors_on_the_machine_path_are_problem_json_with_a_request_id(db):
    unknown = sync("srv_not-a-credential")
    missing = call("/api/v1/activation/nowhere")
    wrong_method = call("/api/v1/activation/sync", method="GET")

    assert unknown.status == 401 and unknown.json()["code"] == "not_authenticated"
    assert missing.status == 404 and missing.json()["code"] == "not_found"
    assert wrong_method.status == 405
    for response in (unknown, missing, wrong_method):
        assert response.header("Content-Type") == "application/problem+json"
        assert_machine_headers(response)


def test_the_edge_refusals_hold_on_the_machine_path(settings):
    too_big = call(
        "/api/v1/activation",
        method="POST",
        body=b"{}",
        headers={"Content-Length": str(settings.API_MAX_BODY_BYTES + 1)},
    )
    nul = call("/api/v1/keys", query="kid=%00")

    assert too_big.status == 413 and too_big.json()["code"] == "payload_too_large"
    assert nul.status == 400 and nul.json()["code"] == "validation_error"
    for response in (too_big, nul):
        assert response.header("Content-Type") == "application/problem+json"
        assert response.header("Cache-Control") == "private, no-store"
        assert_machine_headers(response, refused=True)


def test_a_host_not_served_here_is_refused_on_the_machine_path():
    response = call("/api/v1/keys", headers={"Host": "evil.example"})

    assert response.status == 400
    assert response.header("Content-Type") == "application/problem+json"


def test_hsts_is_sent_on_the_machine_path_over_https():
    with override_settings(SECURE_HSTS_SECONDS=31536000):
        app = build_application()
        response = call("/api/v1/keys", secure=True, app=app)

    assert response.header("Strict-Transport-Security").startswith("max-age=31536000")
