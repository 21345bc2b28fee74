from typing import Any

from django.core.management.base import BaseCommand

from lifecycle.services import run_daily_jobs


class Command(BaseCommand):
    help = (
        "Run the daily jobs now: automatic renewals, expiry, stale servers, partner digests and "
        "customers' expiry reminders. "
        "Safe to run again (and at the same time as Celery beat's run)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = run_daily_jobs()
        self.stdout.write(
            f"Renewed {counts['renewed']}, expired {counts['expired']}, "
            f"stale servers {counts['stale']}, digests {counts['digests']}, "
            f"customer reminders {counts['reminders']}."
        )
