"""`python -m bench.jobs`: `manage.py run_daily_jobs` with its database queries counted.

bench/run.py runs it as a child process and reads its wall time and peak RSS from outside; run
on its own it reports them too (`seconds`, `peak_rss_mb`, this process's own).

`python -m bench.jobs --stress [RENEWALS_DUE EXPIRING]` first sets the stress day on the bench
database (`fleet.stress_day`: every server silent, 1,000 renewals and 1,000 expiries due by
default, nothing told yet), then runs the jobs.

The e-mails the jobs queue are sent by the outbox's worker, as in production: the jobs' Celery
tasks are published to an in-memory broker here (no worker runs), never sent in this process
(BENCH_JOBS_EAGER=1 sends them in it, as a setup without Redis would).
"""

import io
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licensing_portal.settings.base")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from licensing_portal.celery import app

    # The worker sends the mail, not the job: publish its tasks without running them here
    # (BENCH_JOBS_EAGER=1: send them in this process, as a Redis-less setup does).
    if not os.environ.get("BENCH_JOBS_EAGER"):
        app.conf.task_always_eager = False  # the broker is memory:// without REDIS_URL

    if "--stress" in sys.argv:
        from bench import fleet

        rest = [int(n) for n in sys.argv[sys.argv.index("--stress") + 1 :]]
        renewals, expiring = (rest + [1000, 1000])[:2] if rest else (1000, 1000)
        fleet.stress_day(renewals_due=renewals, expiring=expiring)

    queries = 0

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    output = io.StringIO()
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        call_command("run_daily_jobs", stdout=output)
    print(
        json.dumps(
            {
                "queries": queries,
                "seconds": round(time.perf_counter() - started, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "output": output.getvalue().strip(),
            }
        )
    )


if __name__ == "__main__":
    main()
