"""`manage.py check --deploy` as a deployment runs it: its own process, the production
settings, a VAR_DIR of its own (a var/embedded.env left by a local `make run` cannot fill in
what production leaves unset), and nothing of the test run's environment that production would
not have."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

SECRET = "x8#kQ2!vN7pL0zR4tY6wE1uI3oP5aS9dF2gH4jK6lZ8xC0vB3nM7qW1eR5tY9uI2oP4"
# Keys of their own, apart from DJANGO_SECRET_KEY (tokens.W001-W003 otherwise).
KEYS_APART = {
    "SECRET_HASH_KEY": "a-hash-key-of-its-own-0123456789abcdef",
    "OUTBOX_LINK_KEY": "a-link-key-of-its-own-0123456789abcdef",
    "LICENSE_KEY_PASSPHRASE": "a-passphrase-of-its-own-0123456789",
}
METRICS_TOKEN = "q7Lr2vXo9TnWc4Hb8JyE1kPz6sDf3GaM"
# Set by the test run (the browser tests allow Django's ORM beside Playwright's event loop),
# never by a deployment: check --deploy refuses it (async.E001).
NOT_IN_PRODUCTION = {
    *KEYS_APART,
    "LICENSE_ROOT_PUBLIC_KEY",
    "LICENSE_ROOT_KEY_FILE",
    "METRICS_TOKEN",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def deploy_check(var_dir: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k not in NOT_IN_PRODUCTION}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", *extra],
        cwd=settings.BASE_DIR,
        env={
            **inherited,
            "VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.base",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": SECRET,
            "DJANGO_ALLOWED_HOSTS": "licensing.example.com",
            "SITE_URL": "https://licensing.example.com",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
