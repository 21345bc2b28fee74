"""Entry point of the fleet build, run by bench/run.py with the bench database configured.

`python -m bench.build small|medium|large FLEET_FILE`

Every tier ends with realistic dates (`fleet.realistic_dates`). The medium tier is the large
one's build at a tenth of its size (2,000 customers, 20,000 licenses, 10,000 servers).
"""

import os
import sys
from pathlib import Path

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licensing_portal.settings.base")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench import fleet

    tier, out = sys.argv[1], Path(sys.argv[2])
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    if tier in ("large", "medium"):
        scale = 1 if tier == "large" else 10
        fleet.build_large(
            customers=int(os.environ.get("BENCH_CUSTOMERS", str(20000 // scale))),
            licenses=int(os.environ.get("BENCH_LICENSES_PER_CUSTOMER", "10")),
            servers_per_customer=int(os.environ.get("BENCH_SERVERS_PER_CUSTOMER", "5")),
            audit_events=int(os.environ.get("BENCH_AUDIT_EVENTS", str(2000000 // scale))),
            out=out,
        )
    else:
        fleet.build_small(
            customers=int(os.environ.get("BENCH_CUSTOMERS", "1000")),
            licenses=int(os.environ.get("BENCH_LICENSES_PER_CUSTOMER", "20")),
            servers_per_customer=int(os.environ.get("BENCH_SERVERS_PER_CUSTOMER", "5")),
            out=out,
        )
    fleet.realistic_dates()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # fresh statistics, as autovacuum would give a live system


if __name__ == "__main__":
    main()
