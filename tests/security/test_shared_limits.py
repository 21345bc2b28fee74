"""The failed-attempt counters are shared by every web process in every configuration
(S2, S26): with Redis they live there, without it in the database, never in one process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_backend(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])",
        ],
        cwd=REPO_ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.base",
            "DJANGO_SECRET_KEY": "x" * 50,
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({}, "django.core.cache.backends.db.DatabaseCache"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/3"}, "django.core.cache.backends.redis.RedisCache"),
    ],
)
def test_the_limiter_cache_is_shared_between_processes(env, backend):
    assert cache_backend(**env) == backend
