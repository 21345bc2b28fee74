"""Entry point of the fleet build, run by bench/run.py with the bench database configured."""

import os
import sys
from pathlib import Path

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licensing_portal.settings.base")
    django.setup()
    from django.core.management import call_command

    from bench import fleet

    call_command("migrate", verbosity=0)
    fleet.build(
        customers=int(os.environ.get("BENCH_CUSTOMERS", "1000")),
        licenses_per_customer=int(os.environ.get("BENCH_LICENSES_PER_CUSTOMER", "20")),
        servers_per_customer=int(os.environ.get("BENCH_SERVERS_PER_CUSTOMER", "5")),
        out=Path(sys.argv[1]),
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would give a live system


if __name__ == "__main__":
    main()
