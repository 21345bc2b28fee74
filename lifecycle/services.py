"""The daily jobs: renewals, expiry, stale servers and one digest per partner.

Each job is idempotent and safe to run twice at once: renewals are unique per license and
period, expiry and staleness are conditional updates, and a digest is unique per partner and
day with its reminders unique per subject and threshold.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from kernel.metrics import run_job
from smartaccounts.actors import Actor
from smartaccounts.renewals import expire_due_licenses, renew_due_subscriptions
from tokens.models import UsageDay
from tokens.services import mark_stale_servers, refresh_over_use_of_licenses

from .digests import send_partner_digests
from .models import Digest, ExpiryNotice, Reminder
from .reminders import send_customer_reminders


def run_daily_jobs(*, now: datetime | None = None) -> dict[str, int]:
    """Everything that runs once a day, in order: renew first, so nothing due to renew expires."""
    now = now or timezone.now()
    actor = Actor.system("daily jobs")
    jobs: dict[str, Callable[[], int]] = {
        "renewed": lambda: renew_due_subscriptions(now=now, actor=actor),
        # The servers holding what expired: their over-use flag refreshed in the same batch.
        "expired": lambda: expire_due_licenses(
            now=now, actor=actor, then=refresh_over_use_of_licenses
        ),
        "stale": lambda: mark_stale_servers(now=now, actor=actor),
        "digests": lambda: send_partner_digests(now=now),
        "reminders": lambda: send_customer_reminders(now=now),
    }
    # Each job's duration and item count go to the metrics (kernel.metrics.run_job).
    return {name: run_job(name, job) for name, job in jobs.items()}


# --- Retention ---------------------------------------------------------------------------------


def _delete_in_batches(queryset: QuerySet[Any], delete: Callable[[list[Any]], int]) -> int:
    """Delete `queryset`'s rows `DAILY_JOBS_BATCH_SIZE` at a time (each in its own short
    transaction, so pruning a backlog holds no long lock); `delete` is given each batch's keys."""
    size = settings.DAILY_JOBS_BATCH_SIZE
    deleted = 0
    while True:
        batch = list(queryset.values_list("pk", flat=True)[:size])
        if batch:
            with transaction.atomic():
                deleted += delete(batch)
        if len(batch) < size:
            return deleted


def prune_told_records(*, now: datetime) -> int:
    """Forget what no digest or reminder will look at again; returns how many rows went.

    - digests older than DIGEST_RETENTION, with the over-use reminders they recorded: an
      over-use still there is told again after that long;
    - customers' reminder e-mails older than REMINDER_RETENTION;
    - servers' recorded use per day older than USAGE_HISTORY_DAYS (their pages' chart), but
      for each server's latest such day.

    What was told of ends, renewals, expiries, stale servers and locked orders is one
    watermark per organization and threshold (`ToldThrough`): nothing to prune. Audit events
    are never pruned.
    """
    digests_before = (now - settings.DIGEST_RETENTION).date()
    notices_before = (now - settings.REMINDER_RETENTION).date()

    def digests(ids: list[Any]) -> int:
        told = Reminder.objects.filter(digest__in=ids).delete()[0]
        return told + Digest.objects.filter(pk__in=ids).delete()[0]

    def notices(ids: list[Any]) -> int:
        return ExpiryNotice.objects.filter(pk__in=ids).delete()[0]

    usage_before = (now - timedelta(days=settings.USAGE_HISTORY_DAYS)).date()

    def usage_days(ids: list[Any]) -> int:
        return UsageDay.objects.filter(pk__in=ids).delete()[0]

    # A server's latest day before the cutoff stays: a steady server records nothing, and its
    # chart carries that day's use forward.
    superseded = UsageDay.objects.filter(day__lt=usage_before).filter(
        Exists(
            UsageDay.objects.filter(
                server=OuterRef("server"), day__gt=OuterRef("day"), day__lte=usage_before
            )
        )
    )
    return (
        _delete_in_batches(Digest.objects.filter(day__lt=digests_before), digests)
        + _delete_in_batches(ExpiryNotice.objects.filter(day__lt=notices_before), notices)
        + _delete_in_batches(superseded, usage_days)
    )
