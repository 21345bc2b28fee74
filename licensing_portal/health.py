"""Readiness: what must hold before a web process is handed traffic. Each check answers None
when it holds, else a short reason naming what is wrong."""

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from notifications.selectors import outbox_backlog
from tokens.trust import RootKeyMissing, root_public_key

# Once every migration is applied, it stays so for the life of the process (new code means a
# new process), so the migration graph is loaded only until then.
_migrated = False


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return "the database is unreachable"
    return None


def check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        return "Redis is unreachable"
    finally:
        client.close()
    return None


def check_outbox() -> str | None:
    backlog = outbox_backlog(timezone.now())
    limit = settings.READY_OUTBOX_MAX_UNSENT
    if backlog.unsent > limit:
        return f"{backlog.unsent} e-mails wait to be sent (limit {limit})"
    if backlog.oldest_age_seconds > settings.READY_OUTBOX_MAX_AGE.total_seconds():
        return f"the oldest unsent e-mail has waited {int(backlog.oldest_age_seconds)} s"
    return None


def check_migrations() -> str | None:
    global _migrated
    if _migrated:
        return None
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return f"{len(plan)} migrations are not applied"
    _migrated = True
    return None


def check_root() -> str | None:
    """Without the vendor root no signing key may sign: every activation and sync would fail."""
    try:
        root_public_key()
    except RootKeyMissing:
        return "no root key: set LICENSE_ROOT_PUBLIC_KEY (see `manage.py check --deploy`)"
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "redis": check_redis,
    "outbox": check_outbox,
    "migrations": check_migrations,
    "root": check_root,
}


# What a web process can serve without: a failure here is reported as degraded (in the body
# and the licensing_readiness_degraded gauge) and the process stays in rotation. Taking every
# replica out because Redis or the mail worker is down would turn a partial outage into a full
# one. Every other check is required.
DEGRADING = frozenset({"redis", "outbox"})


def readiness() -> dict[str, str]:
    """Each check's answer: "ok", "skipped" (Redis not configured), or what is wrong. After a
    failed database check the checks that need it are not run."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "redis" and not settings.REDIS_URL:
            results[name] = "skipped"
            continue
        if name in ("outbox", "migrations") and results.get("database") != "ok":
            results[name] = "not checked: the database is unreachable"
            continue
        try:
            failure = check()
        except DatabaseError:
            failure = "the database failed the check"
        results[name] = failure or "ok"
    return results
