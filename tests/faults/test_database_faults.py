"""Fault tests (S14): PostgreSQL connections dropped while e-mails go out and during a sync."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import AuditEvent

from ..concurrency import in_background
from ..conftest import api_client_for
from ..orders.payloads import URL, order_body
from .conftest import (
    FAULT_TEST_MARKS,
    _admin_connection,
    _first_query,
    messages_in,
    needs_redis_server,
    server_row,
    sync,
    terminate_backend,
    wait_for,
)

pytestmark = FAULT_TEST_MARKS


@needs_redis_server
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_dropped_database_connections_never_send_two_different_emails(cast, workers, tmp_path):
    """A burst of orders while every connection but the test's own is terminated again and
    again (what a PostgreSQL restart does to the workers): each order ends with its one
    e-mail, copies after a fault are identical, and every link works."""
    import re

    from orders.services import find_order_by_unlock_secret

    worker = workers(
        EMAIL_BACKEND="tests.faults.slow_email.SlowFileBackend",
        SLOW_EMAIL_SECONDS="0.3",
        OUTBOX_CLAIM_LEASE_SECONDS="3",
        OUTBOX_SWEEP_AFTER_SECONDS="3600",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    terminated = []

    def drop_connections(stop: threading.Event) -> None:
        with _admin_connection() as admin:
            admin_pid = admin.execute("SELECT pg_backend_pid()").fetchone()[0]
            while not stop.wait(0.4):
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid NOT IN (%s, %s)",
                    [own_pid, admin_pid],
                ).fetchall()
                terminated.append(len(rows))

    client = api_client_for(cast.alice_reseller)
    references = [f"PO-PGFAULT-{n}" for n in range(12)]
    with in_background(drop_connections):
        for reference in references:
            response = client.post(URL, order_body(reference), format="json")
            assert response.status_code == 201, response.content
            time.sleep(0.3)
        time.sleep(3)
    assert sum(terminated) > 0  # the faults really happened

    rows = OutboundEmail.objects.filter(kind="order")
    assert wait_for(lambda: not rows.filter(sent_at__isnull=True).exists(), timeout=120), (
        worker.output()[-4000:]
    )
    messages = messages_in(workers.mail_dir)
    for reference in references:
        order = Order.objects.get(reference=reference)
        assert order.lines.count() == 2
        assert all(line.license_id for line in order.lines.all())
        copies = [
            raw
            for raw, parsed in messages
            if str(parsed["Subject"]).strip().startswith(f"Order {reference} ")
        ]
        assert copies, reference
        assert len(set(copies)) == 1, f"{reference}: {len(set(copies))} different e-mails"
        secret = re.search(r"/unlock/([^/\s]+)/", copies[0]).group(1)
        assert find_order_by_unlock_secret(secret) == order


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_between_syncs_is_replaced_by_itself(online_server):
    server_id, credential = online_server
    device = APIClient()
    assert sync(device, credential, version="W27").status_code == 200

    connection.ensure_connection()
    terminate_backend(connection.connection.info.backend_pid)

    # CONN_HEALTH_CHECKS: the persistent connection is found dead and replaced before use.
    response = sync(device, credential, version="W28")
    assert response.status_code == 200, response.content
    assert server_row(server_id)["reported_version"] == "W28"


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_just_before_the_syncs_read_is_replaced_and_the_read_retried(
    online_server,
):
    server_id, credential = online_server
    device = APIClient()
    matches = _first_query("reading")
    backends = []

    def drop_first(execute, sql, params, many, context):
        if matches(sql):
            backends.append(context["connection"].connection.info.backend_pid)
            if len(backends) == 1:
                terminate_backend(backends[0])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(drop_first):
        response = sync(device, credential, version="W28")

    assert response.status_code == 200, response.content
    # Read twice: on the dropped connection, then on a new one.
    assert len(backends) == 2 and backends[0] != backends[1]
    assert server_row(server_id)["reported_version"] == "W28"


@pytest.mark.parametrize("moment", ["reading", "writing"])
@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_during_a_sync_answers_503_and_the_next_sync_works(
    online_server, moment
):
    server_id, credential = online_server
    device = APIClient()
    before = server_row(server_id)
    events_before = AuditEvent.objects.count()
    assert before["first_sync_at"] is None  # this first sync has something to write
    matches = _first_query(moment)
    # The read is the request's first statement, and doubles as the connection's health check:
    # it is retried once on a new connection, so only a second drop makes it fail.
    drops = 2 if moment == "reading" else 1
    fired = []

    def drop_connection(execute, sql, params, many, context):
        if len(fired) < drops and matches(sql):
            fired.append(sql)
            terminate_backend(context["connection"].connection.info.backend_pid)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(drop_connection):
        response = sync(device, credential)

    assert fired, f"no {moment} query was made during the sync"
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "service_unavailable" and body["status"] == 503
    assert int(response["Retry-After"]) > 0
    # Nothing was half written: the transaction died with the connection.
    assert server_row(server_id) == before
    assert AuditEvent.objects.count() == events_before

    response = sync(device, credential)
    assert response.status_code == 200, response.content
    assert response.json()["license"]
    after = server_row(server_id)
    assert after["first_sync_at"] is not None and after["reported_version"] == "W27"
    assert after["reported_usage"] == {"CALL_RECORDING": 2}
    assert AuditEvent.objects.filter(action="server.first_sync").count() == 1
