from typing import Any

from celery import shared_task

from . import services


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    dont_autoretry_for=(services.ClaimedElsewhere,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def send_email(self: Any, row_id: str) -> bool:
    try:
        return services.deliver_email(row_id=row_id)
    except services.ClaimedElsewhere as busy:
        # Another sender holds the row; if it died, its claim runs out and this retry sends.
        raise self.retry(countdown=busy.retry_in + 1, max_retries=None) from busy


@shared_task(acks_late=True)
def sweep_outbox() -> int:
    return services.sweep_outbox()
