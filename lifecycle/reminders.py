"""The customers' own expiry reminders (30 and 7 days before an end), with each user's opt-out."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from notifications.tasks import enqueue_email
from smartaccounts.actors import Actor
from smartaccounts.audit import record_event
from smartaccounts.errors import AccountError
from smartaccounts.models import License, Organization, SmartAccount, User

from .digests import ending_within
from .models import ExpiryNotice, ExpiryNoticeLine

CUSTOMER_THRESHOLDS = (30, 7)
EXPIRY_REMINDER_EMAIL = "expiry_reminder"


@dataclass(frozen=True)
class NoticeLine:
    license: License
    what: str
    ends_at: datetime
    days_left: int
    threshold: int

    @property
    def key(self) -> tuple[str, str, datetime, int]:
        return (str(self.license.pk), self.what, self.ends_at, self.threshold)


def customer_notice_lines(now: datetime) -> dict[str, list[NoticeLine]]:
    """By customer organization id: the terms and care ending within 30 days not yet told at
    their current threshold. A subscription that renews itself does not end: not listed."""
    candidates = [
        NoticeLine(lic, what, end, days_left, threshold)
        for lic, what, end, days_left, threshold in ending_within(
            License.objects.filter(account__organization__kind=Organization.Kind.CUSTOMER),
            now,
            CUSTOMER_THRESHOLDS,
        )
        if not (what == "term" and lic.auto_renew)
    ]
    told = {
        (str(license_id), what, ends_at, threshold)
        for license_id, what, ends_at, threshold in ExpiryNoticeLine.objects.filter(
            license__in=[line.license.pk for line in candidates]
        ).values_list("license_id", "what", "ends_at", "threshold")
    }
    by_customer: dict[str, list[NoticeLine]] = {}
    for line in candidates:
        if line.key not in told:
            by_customer.setdefault(str(line.license.account.organization_id), []).append(line)
    return by_customer


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


def send_expiry_notice(
    *, account: SmartAccount, lines: list[NoticeLine], to: list[str], now: datetime
) -> ExpiryNotice | None:
    """Queue one reminder e-mail to a customer's users about `lines`; None when there is
    nothing to say or another run told them already (today, or these lines)."""
    if not lines or not to:
        return None
    try:
        with transaction.atomic():
            notice = ExpiryNotice.objects.create(
                customer_id=account.organization_id, day=now.date(), created_at=now
            )
            ExpiryNoticeLine.objects.bulk_create(
                [
                    ExpiryNoticeLine(
                        notice=notice,
                        license=line.license,
                        what=line.what,
                        ends_at=line.ends_at,
                        threshold=line.threshold,
                        days_left=line.days_left,
                    )
                    for line in lines
                ]
            )
            enqueue_email(kind=EXPIRY_REMINDER_EMAIL, object_id=str(notice.pk), to=to)
            record_event(
                actor=Actor.system("daily jobs"),
                action="reminder.sent",
                obj=notice,
                account=account,
                data={"items": len(lines), "recipients": len(to)},
            )
    except IntegrityError:
        return None
    return notice


def send_customer_reminders(*, now: datetime) -> int:
    """Each customer with a care or subscription end within 30 (then 7) days gets one e-mail
    a day at most, each end told once per threshold, to its users who did not opt out."""
    pending = customer_notice_lines(now)
    told_today = {
        str(org_id)
        for org_id in ExpiryNotice.objects.filter(
            customer__in=list(pending), day=now.date()
        ).values_list("customer_id", flat=True)
    }
    pending = {org: lines for org, lines in pending.items() if org not in told_today}
    recipients = reminder_recipients(list(pending))
    sent = 0
    for org_id, lines in pending.items():
        account = lines[0].license.account
        notice = send_expiry_notice(
            account=account, lines=lines, to=recipients.get(org_id, []), now=now
        )
        sent += notice is not None
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
