"""Fault tests (S12, S13): Redis down while an order arrives, a worker killed mid-send."""

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from licensing_portal.celery import app as celery_app
from notifications import tasks
from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import License

from ..conftest import api_client_for
from ..orders.payloads import URL, order_body
from .conftest import (
    FAULT_TEST_MARKS,
    _reset_broker_pools,
    connections_to,
    finished_tasks,
    free_port,
    is_sent,
    mail_files,
    needs_redis_server,
    wait_for,
)

pytestmark = FAULT_TEST_MARKS


@needs_redis_server
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_down_while_an_order_arrives_the_mail_goes_out_once_it_is_back(cast, broker, workers):
    client = api_client_for(cast.alice_reseller)
    broker.stop()

    with connections_to(broker.port) as tried:
        response = client.post(URL, order_body("PO-REDIS-DOWN"), format="json")

    assert response.status_code == 201, response.content
    # Publishing tried the dead broker once and gave up: no retries for the request to wait on.
    assert len(tried) == 1, tried
    order = Order.objects.get(pk=response.json()["id"])
    assert License.objects.filter(order_lines__order=order).count() == 2
    row = OutboundEmail.objects.get(object_id=str(order.pk))
    assert row.sent_at is None  # nothing could be queued: the row waits for the sweep

    broker.start()  # the same port, empty: the task published at commit is gone for good
    worker = workers(OUTBOX_SWEEP_AFTER_SECONDS="1")
    # The sweep takes rows older than OUTBOX_SWEEP_AFTER (1 s here), as beat does every minute.
    wait_for(lambda: timezone.now() - row.created_at > timedelta(seconds=1.5), timeout=5)
    tasks.sweep_outbox.delay()
    assert wait_for(lambda: is_sent(row), timeout=30), worker.output()[-3000:]
    assert wait_for(lambda: finished_tasks(worker) >= 1, timeout=10)

    # The sweep again, and a late duplicate of the order's task: nothing more goes out.
    tasks.sweep_outbox.delay()
    tasks.send_email.delay(str(row.pk))
    assert wait_for(lambda: finished_tasks(worker) >= 3, timeout=20), worker.output()[-3000:]
    files = mail_files(workers.mail_dir)
    assert len(files) == 1
    content = files[0].read_text()
    assert "PO-REDIS-DOWN" in content
    assert content.count(f"{settings.SITE_URL}/unlock/") >= 1
    row.refresh_from_db()
    assert row.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_an_order_does_not_wait_on_a_dead_broker(cast, tmp_path):
    conf = celery_app.conf
    saved = conf.broker_url, conf.task_always_eager
    # Nothing listens on this port: every connection is refused at once.
    port = free_port()
    conf.broker_url, conf.task_always_eager = f"redis://127.0.0.1:{port}/0", False
    _reset_broker_pools()
    try:
        client = api_client_for(cast.alice_reseller)
        with connections_to(port) as tried:
            response = client.post(URL, order_body("PO-FAST"), format="json")
    finally:
        conf.broker_url, conf.task_always_eager = saved
        _reset_broker_pools()
    assert response.status_code == 201, response.content
    assert not OutboundEmail.objects.get(object_id=response.json()["id"]).sent_at
    # One refused connection and the publish gave up: no retry loop, no back-off to sleep
    # through (the outbox sweep sends the row later).
    assert len(tried) == 1, tried


@needs_redis_server
@pytest.mark.redis
@pytest.mark.parametrize("killed", ["worker", "pool process"])
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_in_the_middle_of_sending_the_mail_is_sent_once(
    cast, workers, tmp_path, killed
):
    markers = tmp_path / "sending"
    slow = {
        "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.base",
        "CELERY_VISIBILITY_TIMEOUT_SECONDS": os.environ.get("FAULTS_VISIBILITY_TIMEOUT", "5"),
        "CELERY_UNACKED_RESTORE_SECONDS": "1",
        "FAULTS_VISIBILITY_TIMEOUT": "5",
        "EMAIL_BACKEND": "tests.faults.slow_email.SlowFileBackend",
        "SLOW_EMAIL_SECONDS": "3",
        "SLOW_EMAIL_MARKER_DIR": str(markers),
        # Only the task itself can send the mail here: no beat, and a sweep would wait.
        "OUTBOX_SWEEP_AFTER_SECONDS": "3600",
        # The claim outlives the 3 s send and runs out before the message is redelivered.
        "OUTBOX_CLAIM_LEASE_SECONDS": "4",
        # ...and outlives a sweep's run (checked at start-up).
        "EMAIL_TIMEOUT": "2",
        "OUTBOX_SWEEP_MAX_SECONDS": "1",
    }

    def attempts() -> int:
        return len(list(markers.glob("sending-*"))) if markers.exists() else 0

    first = workers(**slow)
    response = api_client_for(cast.alice_reseller).post(URL, order_body("PO-KILLED"), format="json")
    assert response.status_code == 201, response.content
    row = OutboundEmail.objects.get(object_id=response.json()["id"])

    # The worker is inside the send, holding the row's claim.
    assert wait_for(lambda: attempts() == 1, timeout=30), first.output()[-3000:]
    received = [line for line in first.output().splitlines() if "send_email[" in line]
    assert received, first.output()[-3000:]
    task_id = received[0].split("send_email[", 1)[1].split("]", 1)[0]
    if killed == "worker":
        first.kill()
        assert mail_files(workers.mail_dir) == []
        assert not is_sent(row)
        # acks_late: the message was never acknowledged, so Redis hands it to the next
        # worker once the visibility timeout has passed.
        survivor = workers(**slow)
    else:
        first.kill_pool_process()
        # reject_on_worker_lost: the main process puts the message back at once and a new
        # pool process runs it.
        survivor = first

    assert wait_for(lambda: is_sent(row), timeout=45), survivor.output()[-3000:]
    done = f"send_email[{task_id}] succeeded"
    assert wait_for(lambda: done in survivor.output(), timeout=10), survivor.output()[-3000:]

    files = mail_files(workers.mail_dir)
    assert len(files) == 1
    assert "PO-KILLED" in files[0].read_text()
    assert attempts() == 2  # the killed send and the redelivered one
    row.refresh_from_db()
    assert row.attempts == 2  # two claims: the killed one ran out, the second sent
