"""Settings for every mode. Production differs from development by environment only."""

import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from kernel.derived_keys import derived_from_secret_key

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# The shell package carries the templates and static files, so an installed wheel has them;
# its templates come first (they restyle the login and password pages of contrib apps).
PACKAGE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

# Secrets handed to partners and servers are stored as HMAC-SHA256 digests under this key.
# Kept apart from SECRET_KEY so rotating the session key does not invalidate every API key.
SECRET_HASH_KEY = env_str("SECRET_HASH_KEY", derived_from_secret_key("secret-hash", SECRET_KEY))

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Base of every link put in an e-mail; never taken from the request's Host header.
SITE_URL = (env_str("SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "axes",
    "licensing_portal",
    "notifications",
    "smartaccounts",
    "orders",
    "tokens",
    "activation_api",
    "lifecycle",
]

MIDDLEWARE = [
    "kernel.middleware.RequestIdMiddleware",
    "kernel.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "kernel.middleware.EdgeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A page whose session ended or changed says so, not "refused" (lost_sessions.py).
    "licensing_portal.lost_sessions.LostSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers locked-out logins.
    "axes.middleware.AxesMiddleware",
]
# The device endpoints and the probes are served by a lean handler (licensing_portal/wsgi.py)
# with only this middleware: request ids, the security headers, the edge refusals and caching
# default, host validation. Their callers are programs: no session, CSRF, login or CSP.
# Each entry covers itself and what lies below it on a "/" boundary (kernel.middleware.
# is_machine_path): "/api/v1/keys" and "/api/v1/keys/x", never "/api/v1/keysx".
MACHINE_PATHS = [
    "/api/v1/activation",
    "/api/v1/keys",
    "/healthz",
    "/readyz",
    "/internal",
]
MACHINE_MIDDLEWARE = [
    "kernel.middleware.RequestIdMiddleware",
    "kernel.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "kernel.middleware.EdgeMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "licensing_portal.urls"
WSGI_APPLICATION = "licensing_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "smartaccounts.context_processors.portal",
            ],
            "builtins": ["licensing_portal.templatetags.timefmt"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# DATABASE_POOLER=pgbouncer: DATABASE_URL names a PgBouncer in transaction pooling, where a
# session outlives no transaction: no server-side cursors, and no server-side prepared
# statements unless DATABASE_PREPARE_THRESHOLD is set (PgBouncer >= 1.21 with
# max_prepared_statements keeps them across its server connections). docs/operations.md: PgBouncer.
DATABASE_POOLER = env_str("DATABASE_POOLER", "") or ""
if DATABASE_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured("DATABASE_POOLER is empty or pgbouncer.")
# After how many uses psycopg prepares a statement on the server: a number, or "none".
_PREPARE = (
    env_str("DATABASE_PREPARE_THRESHOLD", "") or ("none" if DATABASE_POOLER else "5")
).lower()
if not (_PREPARE.isdigit() or _PREPARE == "none"):
    raise ImproperlyConfigured("DATABASE_PREPARE_THRESHOLD is a number or none.")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, running again unprepared a statement a pooler lost (kernel/db/).
    DATABASES["default"]["ENGINE"] = "kernel.db.postgresql"
    # Lets the sync hot path keep its query prepared (tokens.selectors.sync_snapshot); the
    # ORM's client-side-bound queries are not affected.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        None if _PREPARE == "none" else int(_PREPARE)
    )
    if DATABASE_POOLER:
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    # An unreachable database fails a request in seconds (a 503), not after the kernel's
    # TCP timeout.
    DATABASES["default"]["OPTIONS"]["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT_SECONDS", 5
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves one developer; wait for the writer instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "smartaccounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins locked out by repeated failures
    "django.contrib.auth.backends.ModelBackend",
]
# Login guessing: after AXES_FAILURE_LIMIT failures for one e-mail from one address, that
# pair is locked out for the cool-off time; the answer is the same for unknown e-mails.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The real client behind the trusted proxies, the same address the rest of the project uses.
AXES_CLIENT_IP_CALLABLE = "smartaccounts.actors.client_address"
# Password spraying: one address failing with this many different e-mails within the window
# is refused further logins until the window ends.
LOGIN_SPRAY_LIMIT = env_int("LOGIN_SPRAY_LIMIT", 10)
LOGIN_SPRAY_WINDOW_MINUTES = env_int("LOGIN_SPRAY_WINDOW_MINUTES", 15)
# Password-reset requests per hour: per client address, and per e-mail address asked for.
PASSWORD_RESET_LIMIT_PER_ADDRESS = env_int("PASSWORD_RESET_LIMIT_PER_ADDRESS", 10)
PASSWORD_RESET_LIMIT_PER_EMAIL = env_int("PASSWORD_RESET_LIMIT_PER_EMAIL", 3)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "smartaccounts:home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * 3

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The back office writes dates as the portal does, UTC named (licensing_portal/formats/en).
FORMAT_MODULE_PATH = ["licensing_portal.formats"]

STATIC_URL = "/static/"
# licensing_portal/static/ is found as the app's own static folder.
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- E-mail -------------------------------------------------------------------------------
from .mail import *  # noqa: E402,F401,F403  (e-mail: the backend, the server, retries)

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# If the broker is down when an order commits, publishing fails fast; the outbox sweep
# sends the row later, so nothing is lost and the request is not held up.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "max_retries": 0,  # publishing gives up at once; the outbox keeps the row
    # A message held by a worker that died is handed to another after this long.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 3600),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_SECONDS", 10),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_SECONDS", 10),
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {
        "task": "notifications.tasks.sweep_outbox",
        "schedule": timedelta(minutes=1),
    },
    "daily-jobs": {
        "task": "lifecycle.tasks.run_daily_jobs",
        "schedule": crontab(hour=3, minute=0),  # UTC
    },
    # After the daily jobs, so a digest never misses the reminders it reads.
    "prune-told-records": {
        "task": "lifecycle.tasks.prune_told_records",
        "schedule": crontab(hour=3, minute=30),  # UTC
    },
}
# Rows whose task has not run after this long are picked up by the sweep.
OUTBOX_SWEEP_AFTER = timedelta(seconds=env_int("OUTBOX_SWEEP_AFTER_SECONDS", 60))
# How long a sender holds a row it is sending; longer than a send can take (EMAIL_TIMEOUT).
OUTBOX_CLAIM_LEASE = timedelta(seconds=env_int("OUTBOX_CLAIM_LEASE_SECONDS", 300))
# /readyz fails when more e-mails than this wait to be sent, or the oldest has waited longer.
READY_OUTBOX_MAX_UNSENT = env_int("READY_OUTBOX_MAX_UNSENT", 1000)
READY_OUTBOX_MAX_AGE = timedelta(seconds=env_int("READY_OUTBOX_MAX_AGE_SECONDS", 15 * 60))
# Key under which the secrets in an e-mail's links are derived from its outbox row, so a
# repeated delivery carries the same links (SECURITY.md: S12). Kept apart from SECRET_HASH_KEY.
OUTBOX_LINK_KEY = env_str("OUTBOX_LINK_KEY", derived_from_secret_key("outbox-links", SECRET_KEY))

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "smartaccounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["kernel.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "kernel.parsers.ContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "kernel.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "kernel.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "kernel.problems.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cloud Licensing Portal API",
    "DESCRIPTION": (
        "Order intake for partners, the portal's Smart Account operations, and the activation "
        "API that AppSuite servers call. Errors are application/problem+json with a stable "
        "`code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "kernel.schema.add_health_check",
    ],
    "ENUM_NAME_OVERRIDES": {
        "LicenseStateEnum": "smartaccounts.models.License.State",
        "LicenseKindEnum": "smartaccounts.models.License.Kind",
        "OrderStateEnum": "orders.models.Order.State",
        "ServerStateEnum": "tokens.models.Server.State",
        "ServerPurposeEnum": "tokens.models.Server.Purpose",
        "OrderLineActionEnum": "orders.models.OrderLine.Action",
    },
}

# --- Product settings ---------------------------------------------------------------------
ACTIVATION_TOKEN_TTL = timedelta(days=env_int("ACTIVATION_TOKEN_TTL_DAYS", 30))
# A used token again from the same machine before its first sync: a retried activation.
ACTIVATION_RETRY_MINUTES = env_int("ACTIVATION_RETRY_MINUTES", 15)
UNLOCK_LINK_TTL_DAYS = env_int("UNLOCK_LINK_TTL_DAYS", 180)  # an e-mailed unlock link's lifetime
# The most items (licenses, servers, events) one CSV export may hold; a larger one is refused
# with a page saying to narrow the filter (kernel/exports.py). 100,000 rows stream in about 6 s.
EXPORT_MAX_ROWS = env_int("EXPORT_MAX_ROWS", 100_000)

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 8)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_FAILURE_VIEW = "licensing_portal.views.csrf_failure"
# Largest request body the API reads (an order of a few hundred lines fits many times over).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
    }
}

# json (one object a line, the production default) or text (the default with debug on).
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT is json or text.")
# Who a request acted for, on its log line (kernel.middleware.RequestLogMiddleware).
REQUEST_LOG_ORGANIZATION = "smartaccounts.actors.organization_logged"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "kernel.middleware.RequestIdFilter"},
        "redact": {"()": "kernel.logs.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {
            "()": "kernel.logs.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id", "redact"],
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# /internal/metrics answers only callers connected from these networks (the direct peer, not
# a forwarded address), or bearing METRICS_TOKEN; anyone else gets 404.
METRICS_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(network))  # a malformed network fails at start-up
    for network in env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
]
METRICS_TOKEN = env_str("METRICS_TOKEN", "") or ""

# Number of reverse proxies in front of the web processes (the TLS proxy in compose: 1).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Take the incoming X-Request-ID as the request's id: only when the proxy in front sets it on
# every request (overwriting the client's). Otherwise each request gets a fresh id and the
# client's value is logged apart as client_request_id.
TRUST_PROXY_REQUEST_ID = env_bool("TRUST_PROXY_REQUEST_ID", False)

# --- License documents ----------------------------------------------------------------------
LICENSE_ISSUER = env_str("LICENSE_ISSUER", SITE_URL)
# The vendor's root key: its private half endorses signing keys and belongs apart from the web
# servers (the embedded default keeps it under var/, made by `make run`); agents pin the public
# half. LICENSE_ROOT_PUBLIC_KEY (ed25519:...) names it where the private half is absent.
LICENSE_ROOT_KEY_FILE = env_str("LICENSE_ROOT_KEY_FILE", str(VAR_DIR / "root-key.pem"))
LICENSE_ROOT_PUBLIC_KEY = env_str("LICENSE_ROOT_PUBLIC_KEY", "")
LICENSE_KEY_ENDORSEMENT_DAYS = env_int("LICENSE_KEY_ENDORSEMENT_DAYS", 3650)
# How long /api/v1/keys may be cached; a rotated key is published this long (plus a margin)
# before it signs, so no verifier behind a cache meets an unknown kid.
KEYS_MAX_AGE = timedelta(seconds=env_int("KEYS_MAX_AGE_SECONDS", 300))
# Passphrase of the signing keys' encryption at rest; defaults to one derived from the secret key.
LICENSE_KEY_PASSPHRASE = env_str("LICENSE_KEY_PASSPHRASE", "")
# Online documents: how long a server may run without reaching us, and when it should refresh.
LICENSE_LEASE = timedelta(days=env_int("LICENSE_LEASE_DAYS", 30))
LICENSE_REFRESH_HINT = timedelta(hours=env_int("LICENSE_REFRESH_HOURS", 12))
# A steady-state sync writes nothing: with usage, version and state unchanged, last_sync_at is
# recorded at most this often (a change is recorded at once). Servers go stale after 3 refresh
# periods, which must exceed this by a refresh period (checked at start-up: tokens.E001).
SYNC_RECORD_INTERVAL = timedelta(minutes=env_int("SYNC_RECORD_MINUTES", 6 * 60))
# A changed usage report is recorded at once when it is material: it changes the over-use
# verdict, names another set of applications, or moves a count by more than this share of the
# recorded one (and by more than 1); a smaller change waits for the next SYNC_RECORD_INTERVAL.
USAGE_MATERIAL_PERCENT = env_int("USAGE_MATERIAL_PERCENT", 10)
# Days of recorded use per server and application kept for its page's chart.
USAGE_HISTORY_DAYS = env_int("USAGE_HISTORY_DAYS", 31)
# Cloud services offered to online servers with active care.
CLOUD_SERVICES = env_list("CLOUD_SERVICES", ["enhanced_support", "proactive_support"])
# Failed token / unlock-link attempts allowed per client address in a window, then 429.
FAILED_ATTEMPTS_LIMIT = env_int("FAILED_ATTEMPTS_LIMIT", 20)
FAILED_ATTEMPTS_WINDOW = timedelta(minutes=env_int("FAILED_ATTEMPTS_WINDOW_MINUTES", 10))
# The daily jobs change rows this many at a time, each batch in one transaction.
DAILY_JOBS_BATCH_SIZE = env_int("DAILY_JOBS_BATCH_SIZE", 500)
# What the daily jobs prune (lifecycle.services.prune_told_records): a partner's reminders of a
# term, care or expiry that ended this long ago, and customers' reminder e-mails this old;
# digests (with the reminders they recorded) kept this long. Audit events are never pruned.
REMINDER_RETENTION = timedelta(days=env_int("REMINDER_RETENTION_DAYS", 90))
DIGEST_RETENTION = timedelta(days=env_int("DIGEST_RETENTION_DAYS", 180))

# Counters of the failed-attempt limits must be shared by every process: Redis when there is
# one, else the database (`manage.py createcachetable`, which `make run` runs), never one
# process's memory.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
        }
    )
}
