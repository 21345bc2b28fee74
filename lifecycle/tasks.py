from celery import shared_task

from . import services


@shared_task(acks_late=True)
def run_daily_jobs() -> dict[str, int]:
    return services.run_daily_jobs()
