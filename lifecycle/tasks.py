from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(acks_late=True)
def run_daily_jobs() -> dict[str, int]:
    return services.run_daily_jobs()


@shared_task(acks_late=True)
def prune_told_records() -> int:
    return services.prune_told_records(now=timezone.now())
