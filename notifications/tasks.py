from celery import shared_task

from . import services


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def send_email(row_id: str) -> bool:
    return services.deliver_email(row_id=row_id)


@shared_task(acks_late=True)
def sweep_outbox() -> int:
    return services.sweep_outbox()
