from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from lifecycle.services import prune_told_records, run_daily_jobs


class Command(BaseCommand):
    help = (
        "Run the daily jobs now: automatic renewals, expiry, stale servers, partner digests, "
        "customers' expiry reminders and pruning of old digests and reminders. "
        "Safe to run again (and at the same time as Celery beat's run)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = run_daily_jobs()
        pruned = prune_told_records(now=timezone.now())
        self.stdout.write(
            f"Renewed {counts['renewed']}, expired {counts['expired']}, "
            f"stale servers {counts['stale']}, digests {counts['digests']}, "
            f"customer reminders {counts['reminders']}."
        )
        if pruned:
            self.stdout.write(f"Pruned {pruned} old digests and reminders.")
