"""The outbox's Celery tasks, and the one way an e-mail is queued (`enqueue_email`).

This module imports the services, never the other way round: the services write, claim, send
and record rows; the tasks run them on a worker."""

import logging
from typing import Any

from celery import shared_task
from django.db import transaction

from . import services
from .models import OutboundEmail

logger = logging.getLogger(__name__)


# A failed attempt whose next one is due within this long is woken by a Celery retry at that
# time (below the broker's visibility timeout, so the retry is never handed out twice); later
# ones are left to the sweep. Either way the row alone counts attempts and decides when to
# give up: the retry only wakes it.
WAKE_UP_WITHIN_SECONDS = 300


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=50)
def send_email(self: Any, row_id: str) -> bool:
    try:
        return services.deliver_email(row_id=row_id)
    except services.ClaimedElsewhere as busy:
        # Another sender holds the row; if it died, its claim runs out and this retry sends.
        raise self.retry(countdown=busy.retry_in + 1, max_retries=None) from busy
    except Exception as exc:
        if self.request.is_eager:  # in-process: never hold the request up, the sweep retries
            logger.warning("E-mail %s could not be sent; the outbox sweep retries it", row_id)
            return False
        try:
            wait = services.seconds_until_due(row_id=row_id)
        except Exception:  # the database is away too: look again shortly
            wait = 5.0
        if wait is None:  # sent, closed or given up on meanwhile
            return False
        if wait > WAKE_UP_WITHIN_SECONDS or self.request.retries >= self.max_retries:
            logger.warning("E-mail %s could not be sent; the outbox sweep retries it", row_id)
            return False
        raise self.retry(countdown=max(wait, 1.0), exc=exc) from exc


@shared_task(acks_late=True)
def sweep_outbox() -> int:
    return services.sweep_outbox()


def enqueue_email(
    *, kind: str, object_id: str, to: list[str], context: dict[str, Any] | None = None
) -> OutboundEmail:
    """Record an e-mail in the caller's transaction and hand it to a worker once that commits.

    If the broker is unreachable at commit time the row stays unsent and the periodic sweep
    delivers it later: the business change never depends on the broker.
    """
    row = services.record_email(kind=kind, object_id=object_id, to=to, context=context)
    transaction.on_commit(lambda: _publish(row.pk))
    return row


def _publish(row_id: object) -> None:
    try:
        send_email.delay(str(row_id))
    except Exception:  # the broker is down: the sweep will send it
        logger.warning("Could not queue e-mail %s; the outbox sweep will send it", row_id)
