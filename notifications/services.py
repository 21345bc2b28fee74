import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import OutboundEmail
from .renderers import render

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 12


def enqueue_email(
    *, kind: str, object_id: str, to: list[str], context: dict[str, Any] | None = None
) -> OutboundEmail:
    """Record an e-mail in the caller's transaction and hand it to a worker once that commits.

    `context` holds facts for the message that its object does not keep (who invited someone,
    and why); it is stored as it is, so it never holds a secret.

    If the broker is unreachable at commit time the row stays unsent and the periodic sweep
    delivers it later: the business change never depends on the broker.
    """
    row = OutboundEmail.objects.create(
        kind=kind, object_id=str(object_id), to=to, context=context or {}
    )
    transaction.on_commit(lambda: _publish(row.pk))
    return row


def _publish(row_id: object) -> None:
    from .tasks import send_email

    try:
        send_email.delay(str(row_id))
    except Exception:  # the broker is down: the sweep will send it
        logger.warning("Could not queue e-mail %s; the outbox sweep will send it", row_id)


def deliver_email(*, row_id: str) -> bool:
    """Send one outbox row unless it was sent already. True when this call sent it.

    The row is locked for the whole send, so two workers given the same row (a duplicate
    delivery, a sweep racing the task) cannot both send it; if this process dies mid-send the
    transaction rolls back and the row is sent again later.
    """
    try:
        with transaction.atomic():
            row = (
                OutboundEmail.objects.select_for_update(skip_locked=True)
                .filter(pk=row_id, sent_at__isnull=True)
                .first()
            )
            if row is None:
                return False
            message = render(row)
            if message is None:
                row.last_error = "Nothing to send any more."
                row.sent_at = timezone.now()
                row.save(update_fields=["last_error", "sent_at"])
                return False
            message.send(fail_silently=False)
            row.subject = message.subject[:255]
            row.sent_at = timezone.now()
            row.attempts += 1
            row.last_error = ""
            row.save(update_fields=["subject", "sent_at", "attempts", "last_error"])
            return True
    except Exception as exc:
        OutboundEmail.objects.filter(pk=row_id, sent_at__isnull=True).update(
            attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise


def sweep_outbox(*, now: datetime | None = None) -> int:
    """Send rows whose task never ran (broker down at commit, worker lost). Returns how many."""
    now = now or timezone.now()
    due = OutboundEmail.objects.filter(
        sent_at__isnull=True,
        created_at__lte=now - settings.OUTBOX_SWEEP_AFTER,
        attempts__lt=MAX_ATTEMPTS,
    ).values_list("pk", flat=True)
    sent = 0
    for row_id in list(due[:500]):
        try:
            if deliver_email(row_id=str(row_id)):
                sent += 1
        except Exception:
            logger.exception("Outbox row %s failed to send; it will be retried", row_id)
    return sent
