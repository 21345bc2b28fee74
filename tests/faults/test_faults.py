"""Fault tests (SECURITY.md S12, S13, S14): Redis down while an order arrives, a worker killed
in the middle of sending, the PostgreSQL connection dropped during a sync.

The e-mail tests start a throwaway redis-server on a free port (the machine's shared Redis is
never touched) and real Celery worker subprocesses on the test database, writing e-mail as
files. Every wait has a timeout and every process is stopped in a `finally`.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from rest_framework.test import APIClient

from licensing_portal.celery import app as celery_app
from notifications import tasks
from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License
from tokens import services
from tokens.models import Server
from tokens.signing import _cache

from ..concurrency import in_background
from ..conftest import api_client_for
from ..factories import LicenseFactory
from ..orders.payloads import URL, order_body

REDIS_SERVER = shutil.which("redis-server")
needs_redis_server = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="needs the redis-server binary to run a throwaway broker it can stop and start",
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason=(
            "fault tests need PostgreSQL (set DATABASE_URL): worker subprocesses share the test "
            "database and connections are terminated with pg_terminate_backend"
        ),
    ),
]


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}:{port}/{db['NAME']}"


class ThrowawayRedis:
    """A redis-server of this test only, without persistence, that can be stopped and started
    again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_for(self.ping, timeout=10):
            self.stop()
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        assert wait_for(lambda: not self.ping(), timeout=5)


class Worker:
    """A real Celery worker subprocess in a process group of its own, logging to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "licensing_portal", "worker"]
                # The prefork pool, as in production: the parent acknowledges and requeues,
                # a pool process runs the task.
                + ["--pool=prefork", "--concurrency=1", "--loglevel=INFO", "--without-heartbeat"]
                + ["--without-gossip", "--without-mingle", "-n", f"faults-{self.log.stem}@%h"],
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_for(lambda: " ready." in self.output(), timeout=30):
            self.stop()
            pytest.fail(f"the worker did not start:\n{self.output()[-3000:]}")
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pool_processes(self) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:  # the parent pid
                found.append(int(stat.parent.name))
        return found

    def kill_pool_process(self) -> None:
        """kill -9 the process running the task; the worker's main process survives."""
        children = self.pool_processes()
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)

    def kill(self) -> None:
        """kill -9 the worker's whole process group, as a crashed host or the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass


# --- E-mail through a broker that fails ---------------------------------------------------


@pytest.fixture
def broker(tmp_path):
    server = ThrowawayRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _reset_broker_pools() -> None:
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def celery_on_broker(broker):
    """This process publishes to the throwaway broker for real (tasks are not eager)."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.task_always_eager
    conf.broker_url, conf.task_always_eager = broker.url, False
    _reset_broker_pools()
    try:
        yield broker
    finally:
        conf.broker_url, conf.task_always_eager = saved
        _reset_broker_pools()


@pytest.fixture
def workers(tmp_path, celery_on_broker):
    """Start workers with `workers(**env)`; all are stopped at the end."""
    started: list[Worker] = []
    mail_dir = tmp_path / "mail"

    def start(**extra: str) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.base",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "SECRET_HASH_KEY": settings.SECRET_HASH_KEY,
            "DATABASE_URL": database_url(),
            "REDIS_URL": celery_on_broker.url,
            "ANYMAIL_PROVIDER": "",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "SITE_URL": settings.SITE_URL,
            **extra,
        }
        worker = Worker(env, tmp_path / f"worker-{len(started) + 1}.log")
        started.append(worker)
        return worker.start()

    start.mail_dir = mail_dir
    start.started = started
    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        if os.environ.get("CI"):
            for worker in started:
                print(worker.log.name, worker.output()[-3000:])


def mail_files(mail_dir: Path) -> list[Path]:
    return sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []


def is_sent(row: OutboundEmail) -> bool:
    return OutboundEmail.objects.filter(pk=row.pk, sent_at__isnull=False).exists()


def finished_tasks(worker: Worker) -> int:
    return worker.output().count(" succeeded in ")


@needs_redis_server
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_down_while_an_order_arrives_the_mail_goes_out_once_it_is_back(cast, broker, workers):
    client = api_client_for(cast.alice_reseller)
    broker.stop()

    started = time.monotonic()
    response = client.post(URL, order_body("PO-REDIS-DOWN"), format="json")
    elapsed = time.monotonic() - started

    assert response.status_code == 201, response.content
    assert elapsed < 10, f"placing the order waited {elapsed:.1f} s on the dead broker"
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
    conf.broker_url, conf.task_always_eager = f"redis://127.0.0.1:{free_port()}/0", False
    _reset_broker_pools()
    try:
        client = api_client_for(cast.alice_reseller)
        started = time.monotonic()
        response = client.post(URL, order_body("PO-FAST"), format="json")
        elapsed = time.monotonic() - started
    finally:
        conf.broker_url, conf.task_always_eager = saved
        _reset_broker_pools()
    assert response.status_code == 201, response.content
    assert not OutboundEmail.objects.get(object_id=response.json()["id"]).sent_at
    assert elapsed < 2, f"placing the order waited {elapsed:.1f} s on the dead broker"


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


# --- PostgreSQL connections dropped while order e-mails go out ------------------------------


def messages_in(mail_dir: Path) -> list[tuple[str, object]]:
    """Every message the file backend wrote, as its text and parsed (a file may hold several)."""
    import email
    import email.policy

    found = []
    for path in mail_files(mail_dir):
        for chunk in path.read_text().split("\n" + "-" * 79 + "\n"):
            if chunk.strip():
                raw = chunk.strip()
                found.append((raw, email.message_from_string(raw, policy=email.policy.default)))
    return found


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


# --- PostgreSQL connection lost during a sync ---------------------------------------------

SYNC = "/api/v1/activation/sync"
ACTIVATE = "/api/v1/activation"


def _admin_connection() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname=db["NAME"],
        autocommit=True,
        connect_timeout=5,
    )


def terminate_backend(pid: int) -> None:
    """What a database restart or failover does to the app's connection."""
    with _admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

        def gone() -> bool:
            found = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            return found.fetchone() is None

        assert wait_for(gone, timeout=5, interval=0.05)


def sync(device: APIClient, credential: str, version: str = "W27"):
    # A WSGI server closes unusable or old connections at the start and end of each request;
    # Django's test client skips that (for test transactions), so do it here.
    close_old_connections()
    try:
        return device.post(
            SYNC,
            {"fingerprint": "fp-faults", "version": version, "usage": {"CALL_RECORDING": 2}},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {credential}",
        )
    finally:
        close_old_connections()


def server_row(server_id) -> dict:
    return Server.objects.filter(pk=server_id).values().get()


@pytest.fixture
def online_server(cast):
    """An activated server (credential in hand) that has not synced yet."""
    _cache.clear()
    system = Actor.system("tests")
    account = cast.carol_customer.smart_account
    LicenseFactory(account=account, product=cast.recording, quantity=10)
    server = services.create_server(account=account, name="pbx-db", purpose="test", actor=system)
    token = services.assign_capacity(
        server=server, product=cast.recording, quantity=4, actor=system
    ).token.raw
    response = APIClient().post(
        ACTIVATE,
        {"token": token, "fingerprint": "fp-faults", "hostname": "pbx", "version": "W26"},
        format="json",
    )
    assert response.status_code == 201, response.content
    yield server.pk, response.json()["credential"]
    if connection.connection is not None and not connection.is_usable():
        connection.close()  # a failed test never leaves a dead connection to the teardown
    _cache.clear()


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


def _first_query(kind: str):
    if kind == "reading":
        return lambda sql: "tokens_servercredential" in sql
    return lambda sql: sql.lstrip().upper().startswith('UPDATE "TOKENS_SERVER"')


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
    fired = []

    def drop_connection(execute, sql, params, many, context):
        if not fired and matches(sql):
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
