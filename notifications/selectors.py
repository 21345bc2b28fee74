"""Reads of the outbox for the operators and the pages: its backlog, the rows given up on."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min

from .models import OutboundEmail


@dataclass(frozen=True)
class Backlog:
    unsent: int
    oldest_age_seconds: float  # 0 when nothing waits


def outbox_backlog(now: datetime) -> Backlog:
    """Rows still to send (not given up on), and how long the oldest has waited: one query on
    the unsent rows' partial index."""
    found = OutboundEmail.objects.filter(
        sent_at__isnull=True, state=OutboundEmail.State.PENDING
    ).aggregate(unsent=Count("pk"), oldest=Min("created_at"))
    oldest = found["oldest"]
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Backlog(unsent=found["unsent"], oldest_age_seconds=age)


def outbox_failed() -> int:
    """Rows given up on (every attempt failed for OUTBOX_GIVE_UP) and not re-sent since."""
    return OutboundEmail.objects.filter(state=OutboundEmail.State.FAILED).count()


def last_email_failed(*, kind: str, object_id: str) -> bool:
    """Whether the latest e-mail of this kind about this object was given up on."""
    latest = (
        OutboundEmail.objects.filter(kind=kind, object_id=str(object_id))
        .order_by("-created_at")
        .values_list("state", flat=True)
        .first()
    )
    return latest == OutboundEmail.State.FAILED
