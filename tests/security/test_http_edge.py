"""HTTP at the edge (S24, S28, the general rules of docs/api-contract.md): every response
carries a request id, private answers keep shared caches out, machine paths answer problem+json
whatever went wrong, and input no view should see (deep nesting, NUL bytes, oversized bodies)
is refused with a clear 4xx instead of a 500."""

import json
import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kernel.logs import RedactSecretsFilter, redact
from orders.models import Order

from ..conftest import api_client_for
from ..orders.payloads import assert_problem, order_body

NESTED = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize(
    "path", ["/healthz", "/login/", "/api/v1/keys", "/api/v1/orders", "/no-such-page/"]
)
def test_every_response_carries_a_request_id(db, client, path):
    response = client.get(path)

    assert len(response["X-Request-ID"]) >= 16
    assert client.get(path)["X-Request-ID"] != response["X-Request-ID"]


def test_the_proxys_request_id_is_kept_only_when_configured(db, client, settings):
    sent = "req-0123456789abcdef"
    assert client.get("/healthz", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] != sent
    # Being behind a proxy is not enough: the proxy may pass the client's header through.
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/healthz", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] != sent

    settings.TRUST_PROXY_REQUEST_ID = True
    assert client.get("/healthz", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] == sent
    # Something that could break a log line is not taken even from the proxy.
    assert client.get("/healthz", HTTP_X_REQUEST_ID="a b\r\nc")["X-Request-ID"] != "a b\r\nc"


@pytest.mark.parametrize("path", ["/healthz", "/login/", "/api/v1/orders"])
def test_a_clients_request_id_is_never_the_requests_id(db, client, settings, caplog, path):
    """Two requests sending the same X-Request-ID get two ids, in the header and in the log
    lines; the client's value is logged apart, as client_request_id."""
    settings.TRUSTED_PROXY_COUNT = 1
    sent = "req-chosen-by-the-client"

    with caplog.at_level(logging.INFO, logger="licensing.request"):
        first = client.get(path, HTTP_X_REQUEST_ID=sent)
        second = client.get(path, HTTP_X_REQUEST_ID=sent)

    ids = [first["X-Request-ID"], second["X-Request-ID"]]
    assert sent not in ids and ids[0] != ids[1]
    logged = [r for r in caplog.records if r.name == "licensing.request"]
    assert [r.request_id for r in logged] == ids
    assert [r.client_request_id for r in logged] == [sent, sent]


def test_log_lines_carry_the_request_id(db, client, caplog):
    logger = logging.getLogger("tests.edge")
    from kernel.middleware import RequestIdFilter, current_request_id

    token = current_request_id.set("req-in-the-log")
    try:
        record = logger.makeRecord("tests.edge", logging.INFO, __file__, 1, "hello", None, None)
        RequestIdFilter().filter(record)
    finally:
        current_request_id.reset(token)
    assert record.request_id == "req-in-the-log"


def test_head_healthz_answers_200(db, client):
    response = client.head("/healthz")

    assert response.status_code == 200


def test_a_host_not_served_here_is_a_400_problem_on_machine_paths(db, client):
    for path in ("/api/v1/keys", "/healthz"):
        response = client.get(path, HTTP_HOST="evil.example")

        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert json.loads(response.content)["code"] == "validation_error"


def test_a_body_over_the_limit_is_413_before_it_is_read(cast, settings):
    settings.API_MAX_BODY_BYTES = 2048
    api = api_client_for(cast.alice_reseller)
    body = order_body("PO-BIG")
    body["customer"]["name"] = "x" * 4096

    response = api.post("/api/v1/orders", body, format="json")

    problem = assert_problem(response, 413, "payload_too_large")
    assert problem["limit"] == 2048
    assert not Order.objects.exists()


def test_a_session_call_without_csrf_is_a_403_problem(cast):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(cast.alice_admin)

    response = client.post(f"/api/v1/orders/{'0' * 8}/unlock", {}, format="json")

    assert_problem(response, 403, "permission_denied")


def test_asking_for_problem_json_gets_problem_json_not_406(db):
    response = Client().get("/api/v1/orders", HTTP_ACCEPT="application/problem+json")

    assert_problem(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    "path", ["/api/v1/orders", "/api/v1/activation", "/api/v1/activation/sync"]
)
def test_deeply_nested_json_is_a_400_not_a_500(cast, path):
    api = api_client_for(cast.alice_reseller)

    response = api.generic("POST", path, NESTED, content_type="application/json")

    assert_problem(response, 400, "validation_error")


def test_unauthenticated_sync_with_nested_json_is_a_400(db):
    response = Client().post(
        "/api/v1/activation/sync",
        NESTED,
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer nothing",
    )

    assert response.status_code in (400, 401)
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders?q=%00",
        "/api/v1/servers/abc/assignments/%00",
        "/api/v1/orders/%00",
        "/orders/?q=%00",
    ],
)
def test_nul_bytes_in_paths_and_queries_never_reach_a_500(cast, client, path):
    client.force_login(cast.alice_admin)

    response = client.get(path)

    assert response.status_code in (400, 404)
    if path.startswith("/api/"):
        assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/v1/orders", "/orders/", "/customers/"])
def test_private_answers_keep_shared_caches_out(cast, client, path):
    client.force_login(cast.alice_admin)

    response = client.get(path)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "private" in response["Cache-Control"]


def test_the_public_keys_may_be_cached(db, client):
    assert "public" in client.get("/api/v1/keys")["Cache-Control"]


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('"GET /unlock/Zq3kX_9aa-secret/ HTTP/1.1" 200', "Zq3kX_9aa-secret"),
        ('"POST /password-reset/MQ/c4x-0a1b2c3d4e5f/ HTTP/1.1" 302', "c4x-0a1b2c3d4e5f"),
        ('"GET /invitation/MQ/d5y-aa11bb22cc33/ HTTP/1.1" 200', "d5y-aa11bb22cc33"),
    ],
)
def test_capabilities_are_redacted_from_log_lines(line, secret):
    assert secret not in redact(line)
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", (line,), None
    )
    RedactSecretsFilter().filter(record)
    assert secret not in record.getMessage()
    assert redact("/password-reset/sent/") == "/password-reset/sent/"
