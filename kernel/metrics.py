"""The service's Prometheus metrics, safe for many processes.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn, the Celery worker), each process writes its values
to files in that directory and a scrape adds them up (prometheus_client's multiprocess mode;
gunicorn.conf.py marks dead workers). The files are named after the host as well as the
process id, so containers sharing the directory (web replicas and the worker, see
docker-compose.yml) never write to one another's files. Without it, values live in the process.

What is measured where: the sync endpoint (activation_api), failed-attempt lockouts
(kernel.throttling), the daily jobs (at lifecycle's runner, through ``run_job``), the checks
/readyz reports as degraded (licensing_portal.views); the outbox is read at scrape time
(licensing_portal.metrics).
"""

import os
import socket
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, values


def process_identifier(pid: int | None = None) -> str:
    """Names a process's files: host and process id (the current process by default)."""
    return f"{socket.gethostname()}-{os.getpid() if pid is None else pid}"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_directory = multiprocess_dir()
if _directory:
    os.makedirs(_directory, exist_ok=True)
    # Must be chosen before the first metric is made.
    values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
        process_identifier=process_identifier
    )

SYNC_REQUESTS = Counter(
    "licensing_sync_requests",
    "Syncs of AppSuite servers by answer: status 200, 304, or the refusal's status and code.",
    ["status", "code"],
)
SYNC_DURATION = Histogram(
    "licensing_sync_duration_seconds",
    "Time to answer a sync, in the application.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LOCKOUTS = Counter(
    "licensing_failed_attempt_lockouts",
    "Times an address reached a failed-attempt limit (then refused until the window ends).",
    ["scope"],
)
JOB_DURATION = Histogram(
    "licensing_daily_job_duration_seconds",
    "Duration of each daily job.",
    ["job"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
JOB_ITEMS = Gauge(
    "licensing_daily_job_items",
    "Items the last run of each daily job handled (licenses renewed, e-mails sent...).",
    ["job"],
    multiprocess_mode="mostrecent",
)
JOB_LAST_RUN = Gauge(
    "licensing_daily_job_last_run_timestamp_seconds",
    "When each daily job last finished (Unix time).",
    ["job"],
    multiprocess_mode="mostrecent",
)

READINESS_DEGRADED = Gauge(
    "licensing_readiness_degraded",
    "1 while a check /readyz reports as degraded (Redis, the outbox backlog) fails, else 0.",
    ["check"],
    multiprocess_mode="mostrecent",
)


def observe_sync(status: int, code: str, seconds: float) -> None:
    SYNC_REQUESTS.labels(status=str(status), code=code).inc()
    SYNC_DURATION.observe(seconds)


def record_lockout(scope: str) -> None:
    LOCKOUTS.labels(scope=scope).inc()


def run_job(name: str, job: Callable[[], int]) -> int:
    """Run one daily job, recording its duration and how many items it handled."""
    started = time.perf_counter()
    items = job()
    JOB_DURATION.labels(job=name).observe(time.perf_counter() - started)
    JOB_ITEMS.labels(job=name).set(items)
    JOB_LAST_RUN.labels(job=name).set(time.time())
    return items


def set_readiness_degraded(check: str, degraded: bool) -> None:
    READINESS_DEGRADED.labels(check=check).set(1 if degraded else 0)
