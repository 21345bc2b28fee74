"""The order e-mail through a real Celery worker consuming from Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from licensing_portal.celery import app as celery_app
from notifications.models import OutboundEmail
from notifications.tasks import send_email

from ..conftest import api_client_for, requires_postgres
from ..orders.payloads import URL, order_body

pytestmark = [
    requires_postgres,
    pytest.mark.redis,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs a Redis broker for a real worker: set REDIS_URL (CI does)",
    ),
    pytest.mark.django_db(transaction=True),
]


def wait_for(predicate, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def worker(tmp_path):
    """A worker process on the test database, writing e-mail as files under tmp_path."""
    mail_dir = tmp_path / "mail"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.base",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "SECRET_HASH_KEY": settings.SECRET_HASH_KEY,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EMAIL_FILE_PATH": str(mail_dir),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "SITE_URL": settings.SITE_URL,
    }
    celery_app.control.purge()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "licensing_portal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    always_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield mail_dir
    finally:
        celery_app.conf.task_always_eager = always_eager
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if os.environ.get("CI"):
            print(output[-4000:])


def mail_files(mail_dir: Path) -> list[Path]:
    return sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []


def test_order_email_goes_through_a_real_worker_once(cast, worker):
    client = api_client_for(cast.alice_reseller)

    body = order_body("PO-WORKER")
    response = client.post(URL, body, format="json")
    assert response.status_code == 201

    row = OutboundEmail.objects.get(object_id=response.json()["id"])
    assert wait_for(lambda: OutboundEmail.objects.get(pk=row.pk).sent_at is not None), (
        "the worker did not send the order e-mail"
    )
    files = mail_files(worker)
    assert len(files) == 1
    content = files[0].read_text()
    assert "PO-WORKER" in content
    assert f"{settings.SITE_URL}/unlock/" in content

    # A duplicate delivery of the same task, and a replayed POST, send nothing more.
    send_email.delay(str(row.pk))
    assert client.post(URL, body, format="json").status_code == 200
    time.sleep(2)
    assert len(mail_files(worker)) == 1
