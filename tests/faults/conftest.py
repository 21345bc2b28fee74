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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from licensing_portal.celery import app as celery_app
from notifications.models import OutboundEmail
from smartaccounts.actors import Actor
from tokens import services
from tokens.models import Server
from tokens.signing import _cache

from ..factories import LicenseFactory

REDIS_SERVER = shutil.which("redis-server")
needs_redis_server = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="needs the redis-server binary to run a throwaway broker it can stop and start",
)
# Every fault test module's marks.
FAULT_TEST_MARKS = [
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


@contextmanager
def connections_to(port: int) -> Iterator[list[tuple[str, int]]]:
    """The TCP connections this process opens to `port` during the block: how much a request
    tried a dead broker, counted instead of timed (a loaded machine slows the rest)."""
    opened: list[tuple[str, int]] = []
    real = socket.socket.connect

    def counting(sock: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address[1] == port:
            opened.append(address)
        real(sock, address)

    socket.socket.connect = counting  # type: ignore[method-assign]
    try:
        yield opened
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]


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


def _first_query(kind: str):
    if kind == "reading":
        return lambda sql: "tokens_servercredential" in sql
    return lambda sql: sql.lstrip().upper().startswith('UPDATE "TOKENS_SERVER"')
