"""Activation and syncs through a real PgBouncer in transaction pooling, where consecutive
transactions of one client land on different server connections (forced here with the admin
console's RECONNECT after every request). With DATABASE_POOLER=pgbouncer the sync hot path
prepares nothing on the server, so it works on any PgBouncer. With prepares on, a PgBouncer
without max_prepared_statements (before 1.21, as Debian's) loses them on the switch, and the
backend runs each refused statement again unprepared: syncs never fail."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL behind the PgBouncer; CI sets DATABASE_URL",
    ),
    pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="needs the pgbouncer binary"),
    pytest.mark.django_db(transaction=True),
]

DEVICE = """
import json, sys
import django
django.setup()
import psycopg
from django.test import Client

token, port = sys.argv[1], sys.argv[2]
admin = psycopg.connect(
    f"host=127.0.0.1 port={port} dbname=pgbouncer user=postgres",
    autocommit=True,
    cursor_factory=psycopg.ClientCursor,
)
client = Client(raise_request_exception=False)
answers = []
response = client.post(
    "/api/v1/activation", {"token": token, "fingerprint": "fp-b"}, content_type="application/json"
)
answers.append(response.status_code)
credential = response.json()["credential"]
for i in range(12):
    admin.execute("RECONNECT")  # the next transaction gets a new server connection
    response = client.post(
        "/api/v1/activation/sync",
        {"fingerprint": "fp-b", "usage": {"CALL_RECORDING": i % 3}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {credential}",
    )
    answers.append(response.status_code)
print(json.dumps(answers))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bouncer_version() -> tuple[int, ...]:
    found = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", found)
    return tuple(int(part) for part in match.groups()) if match else (0, 0)


@pytest.fixture
def bouncer(tmp_path) -> Iterator[int]:
    port = free_port()
    host, pg_port = settings.DATABASES["default"]["HOST"], settings.DATABASES["default"]["PORT"]
    (tmp_path / "users.txt").write_text('"postgres" ""\n')
    config = tmp_path / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
* = host={host or "127.0.0.1"} port={pg_port or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / "users.txt"}
pool_mode = transaction
default_pool_size = 4
admin_users = postgres
ignore_startup_parameters = extra_float_digits,options
"""
    )
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", "nobody"]
    log = (tmp_path / "pgbouncer.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(50):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"pgbouncer did not start: {(tmp_path / 'pgbouncer.log').read_text()}")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def token(cast, perpetual, pending_server, token_for) -> str:
    return token_for(pending_server, cast.recording, 20)


def run_device(token: str, port: int, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/{connection.settings_dict['NAME']}",
        "LICENSE_ROOT_KEY_FILE": settings.LICENSE_ROOT_KEY_FILE,
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", DEVICE, token, str(port)],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_activation_and_syncs_work_through_pgbouncer_in_transaction_pooling(bouncer, token):
    done = run_device(token, bouncer, DATABASE_POOLER="pgbouncer")

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [201] + [200] * 12


@pytest.mark.parametrize("threshold", ["0", "1"])
def test_prepared_syncs_never_fail_on_a_pgbouncer_that_loses_them(bouncer, token, threshold):
    """Prepares on (DATABASE_PREPARE_THRESHOLD) without the pooler setting, on a PgBouncer
    that does not keep prepared statements (Debian's, before 1.21): a statement the server
    refuses ("does not exist" on another server connection, "already exists" where another
    client prepared it) is run again unprepared, the connection prepares nothing more, and
    one warning tells the operator."""
    done = run_device(token, bouncer, DATABASE_PREPARE_THRESHOLD=threshold)

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [201] + [200] * 12, done.stderr[-3000:]
    if bouncer_version() < (1, 21):
        # The refusal happened (it is what this test is about), and was told once.
        assert done.stderr.count("The database refused a prepared statement") == 1, done.stderr


def test_the_compose_file_pins_a_pgbouncer_that_keeps_prepared_statements():
    """docker-compose.yml: a pinned PgBouncer of 1.21 or later with max_prepared_statements,
    and the sync's plan kept prepared through it."""
    compose = (ROOT / "docker-compose.yml").read_text()

    image = re.search(r"image: edoburu/pgbouncer:v(\d+)\.(\d+)\.\d+-p\d+\n", compose)
    assert image, "the PgBouncer image is pinned to a release"
    assert (int(image.group(1)), int(image.group(2))) >= (1, 21)
    setting = re.search(r"max_prepared_statements = (\d+)", compose)
    assert setting and int(setting.group(1)) > 0
    assert re.search(r'DATABASE_PREPARE_THRESHOLD: "\d+"', compose)
    assert "pool_mode = transaction" in compose
