"""The mail server and backend come from the environment (issue #18, item 5)."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SMTP_ENV = {
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "smtp.mail.example",
    "EMAIL_PORT": "587",
    "EMAIL_HOST_USER": "licensing",
    "EMAIL_HOST_PASSWORD": "s3cret-pass",
    "EMAIL_USE_TLS": "true",
    "EMAIL_USE_SSL": "false",
    "EMAIL_TIMEOUT": "17",
}

PRINT_CONNECTION = """
import json, django
django.setup()
from django.conf import settings
from django.core.mail import get_connection
c = get_connection()
print(json.dumps({
    "backend": settings.EMAIL_BACKEND,
    "class": type(c).__module__ + "." + type(c).__name__,
    **{name: getattr(c, name, None) for name in
       ("host", "port", "username", "password", "use_tls", "use_ssl", "timeout")},
}))
"""


def run_settings(extra: dict[str, str]) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EMAIL_", "ANYMAIL_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="licensing_portal.settings.base",
        DJANGO_SECRET_KEY="settings-test-key",
        DJANGO_DEBUG="0",
        **extra,
    )
    done = subprocess.run(
        [sys.executable, "-c", PRINT_CONNECTION],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_smtp_server_comes_from_the_environment():
    found = run_settings(SMTP_ENV)

    assert found == {
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "class": "django.core.mail.backends.smtp.EmailBackend",
        "host": "smtp.mail.example",
        "port": 587,
        "username": "licensing",
        "password": "s3cret-pass",
        "use_tls": True,
        "use_ssl": False,
        "timeout": 17,
    }


def test_ssl_and_the_former_timeout_name():
    found = run_settings(
        {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_PORT": "465",
            "EMAIL_USE_SSL": "1",
            "EMAIL_TIMEOUT_SECONDS": "9",
        }
    )
    assert (found["port"], found["use_ssl"], found["use_tls"], found["timeout"]) == (
        465,
        True,
        False,
        9,
    )


def test_the_default_is_the_file_backend():
    assert run_settings({})["backend"] == "notifications.backends.FileBackend"


def test_an_anymail_provider_names_its_backend():
    found = run_settings({"ANYMAIL_PROVIDER": "postmark", "ANYMAIL_POSTMARK_SERVER_TOKEN": "t"})
    assert found["backend"] == "anymail.backends.postmark.EmailBackend"
    assert found["class"] == "anymail.backends.postmark.EmailBackend"


def test_tls_and_ssl_together_stop_start_up(monkeypatch):
    import importlib

    from licensing_portal.settings import mail

    monkeypatch.setenv("EMAIL_USE_TLS", "1")
    monkeypatch.setenv("EMAIL_USE_SSL", "1")
    try:
        with pytest.raises(ImproperlyConfigured, match="exclusive"):
            importlib.reload(mail)
    finally:
        monkeypatch.undo()
        importlib.reload(mail)
