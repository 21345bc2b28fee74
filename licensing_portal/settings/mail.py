"""E-mail settings: the backend and its mail server, and how the outbox retries and gives up.

Imported by base.py (one line), so every mode reads them from the environment alike.
"""

import os as _os
from datetime import timedelta as _timedelta
from pathlib import Path as _Path

from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

from .env import env_bool as _env_bool
from .env import env_int as _env_int
from .env import env_str as _env_str

DEFAULT_FROM_EMAIL = _env_str("DEFAULT_FROM_EMAIL", "Cloud Licensing <licensing@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The embedded default writes every message to a file of its own in EMAIL_FILE_PATH. Any
# Django e-mail backend may be named instead, e.g. Django's SMTP backend
# (django.core.mail.backends.smtp.EmailBackend, with the EMAIL_HOST settings below), or a
# provider through django-anymail with ANYMAIL_PROVIDER.
DEFAULT_FILE_BACKEND = "notifications.backends.FileBackend"
ANYMAIL_PROVIDER = _env_str("ANYMAIL_PROVIDER")  # e.g. "mailgun", "postmark", "amazon_ses"
if ANYMAIL_PROVIDER:
    EMAIL_BACKEND = f"anymail.backends.{ANYMAIL_PROVIDER}.EmailBackend"
    ANYMAIL = {
        key.removeprefix("ANYMAIL_"): value
        for key, value in _os.environ.items()
        if key.startswith("ANYMAIL_") and key != "ANYMAIL_PROVIDER"
    }
else:
    EMAIL_BACKEND = _env_str("EMAIL_BACKEND", DEFAULT_FILE_BACKEND)
_VAR_DIR = _env_str("VAR_DIR") or str(_Path(__file__).resolve().parent.parent.parent / "var")
EMAIL_FILE_PATH = _env_str("EMAIL_FILE_PATH", str(_Path(_VAR_DIR) / "mail"))

# The mail server of the SMTP backend.
EMAIL_HOST = _env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = _env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = _env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = _env_bool("EMAIL_USE_SSL", False)  # TLS from the start, usually port 465
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise _ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one.")
# Seconds a mail server may take to answer (each network operation); EMAIL_TIMEOUT_SECONDS is
# its former name.
EMAIL_TIMEOUT = _env_int("EMAIL_TIMEOUT", _env_int("EMAIL_TIMEOUT_SECONDS", 60))

# --- The outbox's retries -------------------------------------------------------------------
# A failed attempt is tried again after OUTBOX_RETRY_BASE_SECONDS, doubling with each failure
# up to OUTBOX_RETRY_MAX_SECONDS between attempts (each wait drawn between its half and its
# whole, so rows failed together do not retry together). A row whose attempts have all failed
# for OUTBOX_GIVE_UP_HOURS is given up on: it is marked failed, counted in the metrics
# (licensing_outbox_failed) and shown on its order's page with a Re-send.
OUTBOX_RETRY_BASE = _timedelta(seconds=_env_int("OUTBOX_RETRY_BASE_SECONDS", 30))
OUTBOX_RETRY_MAX = _timedelta(seconds=_env_int("OUTBOX_RETRY_MAX_SECONDS", 3600))
OUTBOX_GIVE_UP = _timedelta(hours=_env_int("OUTBOX_GIVE_UP_HOURS", 72))

# --- The outbox's sweep -----------------------------------------------------------------------
# One sweep (every minute) takes at most this many rows, and starts none after this long; the
# next sweep goes on. A claim must outlive one send: OUTBOX_CLAIM_LEASE_SECONDS (base.py) is
# checked at start-up to exceed OUTBOX_SWEEP_MAX_SECONDS + EMAIL_TIMEOUT, the longest one
# sweep's run can take.
OUTBOX_SWEEP_MAX_ROWS = _env_int("OUTBOX_SWEEP_MAX_ROWS", 500)
OUTBOX_SWEEP_MAX_SECONDS = _timedelta(seconds=_env_int("OUTBOX_SWEEP_MAX_SECONDS", 50))
