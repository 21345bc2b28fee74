"""`python -m bench.jobs`: `manage.py run_daily_jobs` with its database queries counted.

bench/run.py runs it as a child process and reads its wall time and peak RSS from outside.
"""

import io
import json
import os
from collections.abc import Callable
from typing import Any

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licensing_portal.settings.base")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    queries = 0

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    output = io.StringIO()
    with connection.execute_wrapper(count):
        call_command("run_daily_jobs", stdout=output)
    print(json.dumps({"queries": queries, "output": output.getvalue().strip()}))


if __name__ == "__main__":
    main()
