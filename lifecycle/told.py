"""What an organization was told already, as one watermark per threshold (`ToldThrough`), not
one row per item: the partners' digests and the customers' reminders both use it.

An end is in threshold T's window when its days left are at most T and more than the next
smaller threshold (so a license first seen late is told at its current threshold only). It is
news at T unless T's watermark covers it: it ends at or before `through`, and its license did
not change after `told_at` (added, renewed or unlocked since; its end or state may be new).
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max, Q

from orders.models import OrderLine
from smartaccounts.models import LicenseRenewal

from .models import ToldThrough

# The partner's other news (renewals, expiries, stale servers, locked orders) is told up to
# the moment of its last digest: watermark "threshold" 0.
EVENTS = 0


@dataclass(frozen=True)
class Mark:
    through: datetime
    told_at: datetime


Marks = dict[int, Mark]  # by threshold


def threshold_for(days_left: int, thresholds: Sequence[int]) -> int | None:
    crossed = [t for t in thresholds if days_left <= t]
    return min(crossed) if crossed else None


def days_left(end: datetime, now: datetime) -> int:
    return math.ceil((end - now).total_seconds() / 86400)


def windows(now: datetime, thresholds: Sequence[int]) -> list[tuple[int, datetime, datetime]]:
    """(threshold, after, up to): the ends in each threshold's window, nearest first."""
    ordered = sorted(thresholds)
    return [
        (t, now + timedelta(days=ordered[n - 1] if n else 0), now + timedelta(days=t))
        for n, t in enumerate(ordered)
    ]


def marks_of(organization_ids: Iterable[Any], topic: str) -> dict[str, Marks]:
    """{organization id: {threshold: Mark}}, in one query."""
    found: dict[str, Marks] = {}
    for org_id, threshold, through, told_at in ToldThrough.objects.filter(
        organization__in=list(organization_ids), topic=topic
    ).values_list("organization_id", "threshold", "through", "told_at"):
        found.setdefault(str(org_id), {})[threshold] = Mark(through, told_at)
    return found


def changes_after(license_ids: Iterable[Any], since: datetime | None) -> dict[str, datetime]:
    """{license id: its latest renewal or unlock after `since`}, in two queries."""
    ids = list(license_ids)
    if since is None or not ids:
        return {}
    latest: dict[str, datetime] = {}
    for query in (
        LicenseRenewal.objects.filter(license__in=ids, created_at__gt=since)
        .values("license")
        .annotate(at=Max("created_at"))
        .values_list("license", "at"),
        OrderLine.objects.filter(license__in=ids, order__unlocked_at__gt=since)
        .values("license")
        .annotate(at=Max("order__unlocked_at"))
        .values_list("license", "at"),
    ):
        for license_id, at in query:
            key = str(license_id)
            latest[key] = max(at, latest.get(key, at))
    return latest


def is_told(
    *,
    end: datetime,
    threshold: int,
    license_id: Any,
    created_at: datetime,
    marks: Marks,
    changes: dict[str, datetime],
) -> bool:
    mark = marks.get(threshold)
    if mark is None or end > mark.through or created_at > mark.told_at:
        return False
    changed = changes.get(str(license_id))
    return changed is None or changed <= mark.told_at


def new_ends(field: str, now: datetime, thresholds: Sequence[int], marks: Marks) -> Q:
    """The same test in SQL, for one end (`field`: ends_at or care_ends_at) of a partner's
    licenses: in a threshold's window and not covered by that threshold's watermark."""
    news = Q(pk__in=[])
    for threshold, after, up_to in windows(now, thresholds):
        in_window = Q(**{f"{field}__gt": after, f"{field}__lte": up_to})
        mark = marks.get(threshold)
        if mark is None:
            news |= in_window
            continue
        news |= in_window & (
            Q(**{f"{field}__gt": mark.through})
            | Q(created_at__gt=mark.told_at)
            | Q(pk__in=LicenseRenewal.objects.filter(created_at__gt=mark.told_at).values("license"))
            | Q(
                pk__in=OrderLine.objects.filter(order__unlocked_at__gt=mark.told_at).values(
                    "license"
                )
            )
        )
    return news


def told_now(
    organization_ids: Iterable[Any], topic: str, thresholds: Sequence[int], now: datetime
) -> None:
    """Move the organizations' watermarks to `now` at every threshold, in one statement."""
    ToldThrough.objects.bulk_create(
        [
            ToldThrough(
                organization_id=org_id,
                topic=topic,
                threshold=threshold,
                through=now + timedelta(days=threshold),
                told_at=now,
            )
            for org_id in organization_ids
            for threshold in thresholds
        ],
        update_conflicts=True,
        unique_fields=["organization", "topic", "threshold"],
        update_fields=["through", "told_at"],
    )
