"""Reads of the outbox for the operators: its backlog, for readiness and metrics."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min

from .models import OutboundEmail
from .services import MAX_ATTEMPTS


@dataclass(frozen=True)
class Backlog:
    unsent: int
    oldest_age_seconds: float  # 0 when nothing waits


def outbox_backlog(now: datetime) -> Backlog:
    """Rows still to send (not given up), and how long the oldest has waited: one query on
    the unsent rows' partial index."""
    found = OutboundEmail.objects.filter(sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS).aggregate(
        unsent=Count("pk"), oldest=Min("created_at")
    )
    oldest = found["oldest"]
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Backlog(unsent=found["unsent"], oldest_age_seconds=age)
