"""/healthz says the process is up (one query); /readyz says it may take traffic: the database
answers and every migration is applied. Redis (when configured) and the outbox backlog only
degrade the service: named in a 200 answer and in the licensing_readiness_degraded gauge, never
taking the replica out of rotation. Both are served on the lean handler (no session, no CSP)."""

import socket
from datetime import timedelta
from unittest import mock

import pytest
from django.db import DatabaseError, connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from licensing_portal import health
from notifications.models import OutboundEmail

from .wsgi_app import WsgiResponse, call

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings, monkeypatch):
    settings.REDIS_URL = None
    monkeypatch.setattr(health, "_migrated", False)


def failing(response: WsgiResponse) -> list[str]:
    assert response.status == 503, response.body
    assert response.header("Content-Type") == "application/problem+json"
    body = response.json()
    assert body["code"] == "service_unavailable"
    return body["failing"]


def outbox_row(**fields) -> OutboundEmail:
    return OutboundEmail.objects.create(kind="order", object_id="x", to=["a@example.com"], **fields)


def test_ready_names_each_check_and_is_served_on_the_lean_path():
    response = call("/readyz")

    assert response.status == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "redis": "skipped",
            "outbox": "ok",
            "migrations": "ok",
            "root": "ok",
        },
        "degraded": [],
    }
    assert response.header("X-Request-ID")
    assert response.cookies == [] and response.header("Content-Security-Policy") is None
    assert "no-cache" in response.header("Cache-Control")


def test_head_is_answered_and_post_is_not():
    assert call("/readyz", method="HEAD").status == 200
    assert call("/healthz", method="HEAD").status == 200
    assert call("/readyz", method="POST").status == 405


def test_liveness_stays_on_the_lean_path():
    response = call("/healthz")

    assert response.status == 200 and response.json() == {"status": "ok"}
    assert response.cookies == [] and response.header("Content-Security-Policy") is None


def degraded(response: WsgiResponse) -> list[str]:
    assert response.status == 200, response.body
    body = response.json()
    assert body["status"] == "degraded"
    return body["degraded"]


def test_an_unreachable_database_fails_readiness_by_name():
    broken = mock.MagicMock()
    broken.cursor.side_effect = DatabaseError("connection refused")
    with mock.patch.object(health, "connection", broken):
        response = call("/readyz")

    assert failing(response) == ["database", "migrations"]
    assert response.json()["checks"]["database"] == "the database is unreachable"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_a_real_database_that_is_unreachable_fails_readiness(settings):
    """A PostgreSQL connection to a port nothing listens on: refused, then 503, quickly."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    with socket.socket() as sock:  # a free port, closed again: nothing listens there
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    unreachable = DatabaseWrapper(
        {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": closed_port}, alias="down"
    )
    try:
        with mock.patch.object(health, "connection", unreachable):
            response = call("/readyz")
    finally:
        unreachable.close()

    assert failing(response) == ["database", "migrations"]


def test_an_unreachable_redis_degrades_readiness_without_failing_it(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    response = call("/readyz")

    assert degraded(response) == ["redis"]
    assert response.json()["checks"]["redis"] == "Redis is unreachable"
    assert response.json()["checks"]["database"] == "ok"
    assert readiness_gauge("redis") == 1.0 and readiness_gauge("outbox") == 0.0

    settings.REDIS_URL = None
    assert call("/readyz").json()["status"] == "ok"
    assert readiness_gauge("redis") == 0.0


def readiness_gauge(check: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("licensing_readiness_degraded", {"check": check})


def test_too_many_unsent_emails_degrade_readiness(settings):
    settings.READY_OUTBOX_MAX_UNSENT = 2
    for _ in range(3):
        outbox_row()
    outbox_row(sent_at=timezone.now())  # sent rows do not count

    response = call("/readyz")

    assert degraded(response) == ["outbox"]
    assert "3 e-mails" in response.json()["checks"]["outbox"]
    assert readiness_gauge("outbox") == 1.0


def test_an_old_unsent_email_degrades_readiness(settings):
    settings.READY_OUTBOX_MAX_AGE = timedelta(minutes=15)
    outbox_row(created_at=timezone.now() - timedelta(minutes=10))
    assert call("/readyz").json()["status"] == "ok"

    outbox_row(created_at=timezone.now() - timedelta(minutes=20))

    assert degraded(call("/readyz")) == ["outbox"]


def test_a_row_given_up_on_does_not_hold_readiness_back(settings):
    # A failed row is counted by licensing_outbox_failed and shown on its order's page; it is
    # not a backlog the workers are behind on.
    outbox_row(created_at=timezone.now() - timedelta(days=4), state="failed")

    assert call("/readyz").json()["status"] == "ok"


def test_an_unapplied_migration_fails_readiness():
    latest = MigrationRecorder.Migration.objects.filter(app="notifications").latest("id")
    latest.delete()  # as if this code were deployed before `migrate` ran

    response = call("/readyz")

    assert failing(response) == ["migrations"]
    assert "not applied" in response.json()["checks"]["migrations"]


def test_a_service_with_no_root_key_fails_readiness(settings, tmp_path):
    # Neither the root file nor LICENSE_ROOT_PUBLIC_KEY: no signing key could ever sign.
    settings.LICENSE_ROOT_KEY_FILE = str(tmp_path / "absent.pem")
    settings.LICENSE_ROOT_PUBLIC_KEY = ""

    response = call("/readyz")

    assert failing(response) == ["root"]
    assert "LICENSE_ROOT_PUBLIC_KEY" in response.json()["checks"]["root"]


def test_the_public_root_alone_is_enough_for_readiness(settings, tmp_path, vendor_root):
    settings.LICENSE_ROOT_KEY_FILE = str(tmp_path / "absent.pem")
    settings.LICENSE_ROOT_PUBLIC_KEY = vendor_root

    assert call("/readyz").status == 200
