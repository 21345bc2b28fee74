"""The customers' own expiry reminders (30 and 7 days before an end), with each user's opt-out.

They go out in batches of DAILY_JOBS_BATCH_SIZE customers, each batch a fixed number of
queries whatever its size: the ends in the window read at once, the notices, their outbox rows
and audit events each inserted in one statement, and what was told kept as one watermark per
customer and threshold (`ToldThrough`). The worker sends the e-mails (the outbox's tasks,
published once the batch commits; the sweep if the broker is away), never the job itself.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from notifications.models import OutboundEmail
from notifications.services import record_emails
from notifications.tasks import send_email
from smartaccounts.actors import Actor
from smartaccounts.audit import new_event, record_event, record_events
from smartaccounts.errors import AccountError
from smartaccounts.models import License, Organization, User

from .models import ExpiryNotice, ToldThrough
from .told import changes_after, days_left, is_told, marks_of, threshold_for, told_now

CUSTOMER_THRESHOLDS = (30, 7)
EXPIRY_REMINDER_EMAIL = "expiry_reminder"
# A reminder lists this many ends, the nearest first, and counts the rest ("and N more"): the
# customer's licenses page has them all.
REMINDER_LISTED = 50
TOPIC = ToldThrough.Topic.REMINDER


@dataclass(frozen=True)
class NoticeLine:
    license_id: str
    account_id: str
    what: str
    ends_at: datetime
    days_left: int
    threshold: int

    def as_content(self) -> dict[str, Any]:
        return {
            "license": self.license_id,
            "what": self.what,
            "ends_at": self.ends_at.isoformat(),
            "days_left": self.days_left,
            "threshold": self.threshold,
        }


def _window(now: datetime) -> Q:
    horizon = now + timedelta(days=max(CUSTOMER_THRESHOLDS))
    return Q(ends_at__gt=now, ends_at__lte=horizon) | Q(
        care_ends_at__gt=now, care_ends_at__lte=horizon
    )


def customers_with_ends(now: datetime) -> list[str]:
    """The customers with an active license whose term or care ends within 30 days: one
    query, ids only."""
    return [
        str(org_id)
        for org_id in License.objects.filter(
            _window(now),
            state=License.State.ACTIVE,
            account__organization__kind=Organization.Kind.CUSTOMER,
        )
        .values_list("account__organization_id", flat=True)
        .order_by("account__organization_id")
        .distinct()
    ]


def customer_notice_lines(customer_ids: list[str], now: datetime) -> dict[str, list[NoticeLine]]:
    """By customer: the terms and care ending within 30 days not yet told at their current
    threshold, nearest first. A subscription that renews itself does not end: not listed.
    Four queries for the batch."""
    marks = marks_of(customer_ids, TOPIC)
    rows = list(
        License.objects.filter(
            _window(now), state=License.State.ACTIVE, account__organization__in=customer_ids
        )
        .order_by("ends_at", "care_ends_at", "pk")
        .values_list(
            "pk",
            "account_id",
            "account__organization_id",
            "ends_at",
            "care_ends_at",
            "auto_renew",
            "created_at",
        )
    )
    told_at = [mark.told_at for org in marks.values() for mark in org.values()]
    changes = changes_after({row[0] for row in rows}, min(told_at) if told_at else None)
    by_customer: dict[str, list[NoticeLine]] = {}
    for pk, account_id, org_id, ends_at, care_ends_at, auto_renew, created_at in rows:
        for what, end in _ends(ends_at, care_ends_at, auto_renew):
            left = days_left(end, now)
            threshold = threshold_for(left, CUSTOMER_THRESHOLDS)
            if threshold is None or is_told(
                end=end,
                threshold=threshold,
                license_id=pk,
                created_at=created_at,
                marks=marks.get(str(org_id), {}),
                changes=changes,
            ):
                continue
            by_customer.setdefault(str(org_id), []).append(
                NoticeLine(str(pk), str(account_id), what, end, left, threshold)
            )
    for lines in by_customer.values():
        lines.sort(key=lambda line: (line.ends_at, line.license_id, line.what))
    return by_customer


def _ends(
    ends_at: datetime | None, care_ends_at: datetime | None, auto_renew: bool
) -> Iterator[tuple[str, datetime]]:
    if ends_at and not auto_renew:
        yield "term", ends_at
    if care_ends_at and care_ends_at != ends_at:  # a subscription's care ends with its term
        yield "care", care_ends_at


def reminder_recipients(customer_ids: list[str]) -> dict[str, list[str]]:
    """By customer organization id: the active users who keep expiry reminders on."""
    recipients: dict[str, list[str]] = {}
    for org_id, address in (
        User.objects.filter(organization__in=customer_ids, is_active=True, expiry_reminders=True)
        .order_by("email")
        .values_list("organization_id", "email")
    ):
        recipients.setdefault(str(org_id), []).append(address)
    return recipients


def _notice(customer_id: str, lines: list[NoticeLine], now: datetime) -> ExpiryNotice:
    listed = lines[:REMINDER_LISTED]
    return ExpiryNotice(
        customer_id=customer_id,
        day=now.date(),
        created_at=now,
        content={
            "lines": [line.as_content() for line in listed],
            "count": len(lines),
            "more": len(lines) - len(listed),
        },
    )


def send_expiry_notices(customer_ids: list[str], *, now: datetime) -> int:
    """One batch of customers: each with news gets one e-mail (none if told today already, or
    if nobody there keeps reminders on). Returns how many were queued."""
    told_today = set(
        ExpiryNotice.objects.filter(customer__in=customer_ids, day=now.date()).values_list(
            "customer_id", flat=True
        )
    )
    pending = customer_notice_lines(
        [c for c in customer_ids if c not in {str(t) for t in told_today}], now
    )
    recipients = reminder_recipients(list(pending))
    sending = {org: lines for org, lines in pending.items() if recipients.get(org)}
    if not sending:
        return 0
    notices = [_notice(org, lines, now) for org, lines in sending.items()]
    actor = Actor.system("daily jobs")
    with transaction.atomic():
        ExpiryNotice.objects.bulk_create(notices)
        rows = record_emails(
            [
                (EXPIRY_REMINDER_EMAIL, str(notice.pk), recipients[str(notice.customer_id)])
                for notice in notices
            ]
        )
        record_events(
            [
                new_event(
                    actor=actor,
                    action="reminder.sent",
                    obj=notice,
                    account_id=sending[str(notice.customer_id)][0].account_id,
                    data={
                        "items": notice.content["count"],
                        "recipients": len(recipients[str(notice.customer_id)]),
                    },
                )
                for notice in notices
            ]
        )
        told_now(list(sending), TOPIC, CUSTOMER_THRESHOLDS, now)
        transaction.on_commit(lambda: publish(rows))
    return len(notices)


def publish(rows: list[OutboundEmail]) -> None:
    """Hand the rows to the outbox's worker; if the broker is away the sweep sends them."""
    for row in rows:
        try:
            send_email.delay(str(row.pk))
        except Exception:
            return  # the broker is down: the sweep sends what is left


def send_customer_reminders(*, now: datetime) -> int:
    """Each customer with a care or subscription end within 30 (then 7) days gets one e-mail
    a day at most, each end told once per threshold, to its users who did not opt out:
    DAILY_JOBS_BATCH_SIZE customers at a time."""
    customers = customers_with_ends(now)
    size = settings.DAILY_JOBS_BATCH_SIZE
    sent = 0
    for first in range(0, len(customers), size):
        batch = customers[first : first + size]
        try:
            sent += send_expiry_notices(batch, now=now)
        except IntegrityError:
            # Another run told some of them today: this batch one customer at a time.
            for customer in batch:
                try:
                    sent += send_expiry_notices([customer], now=now)
                except IntegrityError:
                    continue
    return sent


def set_expiry_reminders(*, user: User, enabled: bool, actor: Actor) -> User:
    """A person turns their own expiry reminders on or off."""
    if actor.user is None or actor.user.pk != user.pk:
        raise AccountError("permission_denied", "Only the person themselves may change this.")
    with transaction.atomic():
        changed = (
            User.objects.filter(pk=user.pk)
            .exclude(expiry_reminders=enabled)
            .update(expiry_reminders=enabled)
        )
        user.expiry_reminders = enabled
        if changed:
            record_event(
                actor=actor,
                action="user.notifications_changed",
                obj=user,
                data={"expiry_reminders": enabled},
            )
    return user
