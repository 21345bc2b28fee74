"""Production logs are JSON, one line per request: request id, organization when known,
method, path (capabilities redacted), status, duration, outcome; never a secret (API keys,
activation tokens, server credentials, unlock links)."""

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from kernel.logs import JsonFormatter, RedactSecretsFilter
from kernel.middleware import RequestIdFilter
from smartaccounts.actors import Actor
from smartaccounts.services import create_api_key
from tokens import services
from tokens.signing import _cache

from .factories import LicenseFactory
from .orders.payloads import order_body
from .wsgi_app import call

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    _cache.clear()
    yield
    _cache.clear()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The console handler as production configures it (LOGGING's json formatter and filters),
    writing to a buffer."""
    import licensing_portal.wsgi  # noqa: F401  (its set-up configures logging: do it first)

    options = {k: v for k, v in django_settings.LOGGING["formatters"]["json"].items() if k != "()"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**options))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecretsFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def request_lines(stream: io.StringIO) -> list[dict]:
    return [line for line in lines(stream) if line["logger"] == "licensing.request"]


def test_an_api_key_request_logs_one_json_line_with_its_organization_and_no_key(cast, json_log):
    _, key = create_api_key(
        organization=cast.alice_reseller, name="erp", actor=Actor.system("tests")
    )

    response = call(
        "/api/v1/orders",
        method="POST",
        body=order_body("PO-LOG-1"),
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.status == 201, response.body
    [line] = request_lines(json_log)
    assert line["request_id"] == response.header("X-Request-ID")
    assert line["organization"] == str(cast.alice_reseller.pk)
    assert line["method"] == "POST" and line["path"] == "/api/v1/orders"
    assert line["status"] == 201 and line["outcome"] == "ok"
    assert line["level"] == "INFO" and line["duration_ms"] >= 0 and line["time"]
    assert key not in json_log.getvalue() and key[:12] not in json_log.getvalue()


def test_a_refused_api_key_is_logged_with_its_problem_code_and_not_the_key(db, json_log):
    bogus = "clp_" + "x" * 40

    response = call("/api/v1/orders", headers={"Authorization": f"Bearer {bogus}"})

    assert response.status == 401
    line = request_lines(json_log)[-1]
    assert line["outcome"] == "not_authenticated" and line["organization"] is None
    assert line["request_id"] == response.header("X-Request-ID")
    assert bogus not in json_log.getvalue()


def test_activation_and_sync_log_neither_token_nor_credential(cast, json_log):
    system = Actor.system("tests")
    account = cast.carol_customer.smart_account
    LicenseFactory(account=account, product=cast.recording, kind="perpetual", quantity=5)
    server = services.create_server(account=account, name="pbx-l", purpose="test", actor=system)
    token = services.assign_capacity(
        server=server, product=cast.recording, quantity=5, actor=system
    ).token.raw

    activated = call(
        "/api/v1/activation", method="POST", body={"token": token, "fingerprint": "fp-1"}
    )
    credential = activated.json()["credential"]
    synced = call(
        "/api/v1/activation/sync",
        method="POST",
        body={"fingerprint": "fp-1"},
        headers={"Authorization": f"Bearer {credential}"},
    )
    wrong = call("/api/v1/activation", method="POST", body={"token": token, "fingerprint": "fp-2"})

    assert (activated.status, synced.status, wrong.status) == (201, 200, 409)
    logged = request_lines(json_log)
    assert [line["request_id"] for line in logged] == [
        r.header("X-Request-ID") for r in (activated, synced, wrong)
    ]
    assert [line["outcome"] for line in logged] == ["ok", "ok", "token_used"]
    text = json_log.getvalue()
    assert token not in text and credential not in text
    assert activated.json()["license"] not in text


def test_an_unlock_link_never_reaches_the_log(db, json_log):
    secret = "unlock-secret-abcdefghijklmnop"

    response = call(f"/unlock/{secret}/")

    assert response.status in (200, 404, 410)
    [line] = request_lines(json_log)
    assert line["path"] == "/unlock/[redacted]/"
    assert secret not in json_log.getvalue()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"DJANGO_DEBUG": "0"}, "json"),
        ({"DJANGO_DEBUG": "1"}, "plain"),
        ({"DJANGO_DEBUG": "0", "LOG_FORMAT": "text"}, "plain"),
        ({"DJANGO_DEBUG": "1", "LOG_FORMAT": "json"}, "json"),
    ],
)
def test_json_is_the_default_without_debug_and_log_format_chooses(env, expected):
    base = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DJANGO_DEBUG")}
    environ = {
        **base,
        **env,
        "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.base",
        "DJANGO_SECRET_KEY": "x" * 50,
    }
    script = (
        "from django.conf import settings; "
        "print(settings.LOGGING['handlers']['console']['formatter'])"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], env=environ, cwd=ROOT, capture_output=True, check=True
    )
    assert found.stdout.decode().strip() == expected


def test_no_line_is_built_when_the_request_log_is_off(client, caplog, monkeypatch):
    calls = []
    monkeypatch.setattr("kernel.middleware.redact", lambda path: calls.append(path) or path)
    with caplog.at_level(logging.WARNING, logger="licensing.request"):
        assert client.get("/healthz").status_code == 200
    assert calls == [] and not [r for r in caplog.records if r.name == "licensing.request"]
    with caplog.at_level(logging.INFO, logger="licensing.request"):
        client.get("/healthz")
    assert calls == ["/healthz"]  # redacted once per line


def test_a_clients_request_id_is_logged_apart_and_never_reused(db, json_log, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    sent = "client-chosen-id-0001"

    answers = [call("/healthz", headers={"X-Request-ID": sent}) for _ in range(2)]

    ids = [answer.header("X-Request-ID") for answer in answers]
    assert ids[0] != ids[1] and sent not in ids
    logged = request_lines(json_log)
    assert [line["request_id"] for line in logged] == ids
    assert [line["client_request_id"] for line in logged] == [sent, sent]
