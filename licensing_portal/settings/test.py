"""Test overrides only. DATABASE_URL and REDIS_URL still come from the environment."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("SECRET_HASH_KEY", "test-secret-hash-key")

from .base import *  # noqa: E402,F403
from .base import REDIS_URL  # noqa: E402

# Most tests run tasks in-process; the worker tests switch this off around a real worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = REDIS_URL or "memory://"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
SITE_URL = "https://licensing.example.test"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Key encryption at rest is exercised, but with a cheap passphrase derivation per test process.
LICENSE_KEY_PASSPHRASE = "test-license-key-passphrase"
SECURE_SSL_REDIRECT = False
# django-axes needs the request in authenticate(); the test client's login() has none. The
# lockout tests turn it back on.
AXES_ENABLED = False
