"""The daily jobs: renewals, expiry, stale servers and one digest per partner.

Each job is idempotent and safe to run twice at once: renewals are unique per license and
period, expiry and staleness are conditional updates, and a digest is unique per partner and
day with its reminders unique per subject and threshold.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from kernel.metrics import run_job
from notifications.tasks import enqueue_email
from orders.models import Order, OrderLine
from orders.services import partner_recipients
from smartaccounts.actors import Actor
from smartaccounts.audit import record_event
from smartaccounts.errors import AccountError
from smartaccounts.models import License, LicenseRenewal, Organization, SmartAccount, User
from smartaccounts.services import RENEWAL_GRACE, expire_license, renew_subscription
from tokens.models import Server
from tokens.selectors import overused_servers_in
from tokens.services import mark_stale_servers

from .models import Digest, ExpiryNotice, ExpiryNoticeLine, Reminder

THRESHOLDS = (90, 60, 30, 7)
CUSTOMER_THRESHOLDS = (30, 7)
EXPIRY_REMINDER_EMAIL = "expiry_reminder"
LOCKED_TOO_LONG = timedelta(days=14)
DIGEST_EMAIL = "digest"
LOOKBACK = timedelta(days=30)


def renew_due_subscriptions(*, now: datetime, actor: Actor) -> int:
    due = License.objects.filter(
        kind=License.Kind.SUBSCRIPTION,
        auto_renew=True,
        state__in=[License.State.ACTIVE, License.State.EXPIRED],
        ends_at__lte=now,
        ends_at__gt=now - RENEWAL_GRACE,
    ).values_list("pk", flat=True)
    return sum(
        1
        for license_id in list(due)
        if renew_subscription(license_id=license_id, now=now, actor=actor) is not None
    )


def expire_due_licenses(*, now: datetime, actor: Actor) -> int:
    due = License.objects.filter(state=License.State.ACTIVE, ends_at__lte=now).values_list(
        "pk", flat=True
    )
    return sum(
        1 for license_id in list(due) if expire_license(license_id=license_id, now=now, actor=actor)
    )


def run_daily_jobs(*, now: datetime | None = None) -> dict[str, int]:
    """Everything that runs once a day, in order: renew first, so nothing due to renew expires."""
    now = now or timezone.now()
    actor = Actor.system("daily jobs")
    jobs: dict[str, Callable[[], int]] = {
        "renewed": lambda: renew_due_subscriptions(now=now, actor=actor),
        "expired": lambda: expire_due_licenses(now=now, actor=actor),
        "stale": lambda: len(mark_stale_servers(now=now, actor=actor)),
        "digests": lambda: send_partner_digests(now=now),
        "reminders": lambda: send_customer_reminders(now=now),
    }
    # Each job's duration and item count go to the metrics (kernel.metrics.run_job).
    return {name: run_job(name, job) for name, job in jobs.items()}


# --- Digests ----------------------------------------------------------------------------------


SECTIONS = ("terms_ending", "renewed", "expired", "overuse", "stale_servers", "locked_orders")
ReminderKey = tuple[str, str, str]  # (subject id, reason, marker): what makes an item "told"


@dataclass
class DigestDraft:
    """What a partner's digest would say: items by section, each with the reminder that
    records it was told."""

    partner: Organization
    entries: list[tuple[str, dict[str, Any], ReminderKey]] = field(default_factory=list)

    def add(self, section: str, item: dict[str, Any], reminder: ReminderKey) -> None:
        self.entries.append((section, item, reminder))

    def without(self, told: set[ReminderKey]) -> "DigestDraft":
        kept = [entry for entry in self.entries if entry[2] not in told]
        return DigestDraft(partner=self.partner, entries=kept)

    @property
    def empty(self) -> bool:
        return not self.entries

    @property
    def sections(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
        for section, item, _ in self.entries:
            grouped[section].append(item)
        return grouped

    @property
    def reminders(self) -> list[ReminderKey]:
        return [reminder for _, _, reminder in self.entries]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _accounts_served_by(partner: Organization) -> QuerySet[SmartAccount]:
    return SmartAccount.objects.filter(organization__reseller_links__reseller=partner)


def _licenses_ordered_by(partner: Organization) -> QuerySet[License]:
    return License.objects.filter(
        pk__in=OrderLine.objects.filter(order__placed_by=partner).values("license")
    )


def threshold_for(days_left: int, thresholds: tuple[int, ...] = THRESHOLDS) -> int | None:
    crossed = [t for t in thresholds if days_left <= t]
    return min(crossed) if crossed else None


def build_digest(partner: Organization, now: datetime) -> DigestDraft:
    """A reseller hears about its customers' accounts; a distributor about the licenses of the
    orders it placed (the reseller it placed them for hears too)."""
    draft = DigestDraft(partner=partner)
    if partner.kind == Organization.Kind.RESELLER:
        accounts = _accounts_served_by(partner)
        licenses = License.objects.filter(account__in=accounts)
        _terms_ending(draft, licenses, now)
        _renewed_and_expired(draft, licenses, now)
        _overuse(draft, accounts)
        _stale(draft, accounts)
    elif partner.kind == Organization.Kind.DISTRIBUTOR:
        licenses = _licenses_ordered_by(partner)
        _terms_ending(draft, licenses, now)
        _renewed_and_expired(draft, licenses, now)
    _locked_orders(draft, partner, now)
    told = set(
        Reminder.objects.filter(
            partner=partner, subject_id__in={subject for subject, _, _ in draft.reminders}
        ).values_list("subject_id", "reason", "marker")
    )
    return draft.without(told)


def _ending(
    licenses: QuerySet[License], now: datetime, thresholds: tuple[int, ...]
) -> Iterator[tuple[License, str, datetime, int, int]]:
    """(license, "term" or "care", end, days left, threshold) for active licenses whose term or
    care ends within the largest threshold."""
    horizon = now + timedelta(days=max(thresholds))
    ending = (
        licenses.filter(state=License.State.ACTIVE)
        .filter(
            Q(ends_at__gt=now, ends_at__lte=horizon)
            | Q(care_ends_at__gt=now, care_ends_at__lte=horizon)
        )
        .select_related("product", "account")
        .order_by("ends_at", "care_ends_at", "pk")
    )
    for lic in ending:
        ends = []
        if lic.ends_at and now < lic.ends_at <= horizon:
            ends.append(("term", lic.ends_at))
        if (
            lic.care_ends_at
            and now < lic.care_ends_at <= horizon
            and lic.care_ends_at != lic.ends_at  # a subscription's care ends with its term
        ):
            ends.append(("care", lic.care_ends_at))
        for reason, end in ends:
            days_left = math.ceil((end - now).total_seconds() / 86400)
            threshold = threshold_for(days_left, thresholds)
            if threshold is not None:
                yield lic, reason, end, days_left, threshold


def _terms_ending(draft: DigestDraft, licenses: QuerySet[License], now: datetime) -> None:
    for lic, reason, end, days_left, threshold in _ending(licenses, now, THRESHOLDS):
        draft.add(
            "terms_ending",
            {
                "what": reason,
                "customer": lic.account.name,
                "product": lic.product.name,
                "quantity": lic.quantity,
                "kind": lic.kind,
                "ends_at": _iso(end),
                "days_left": days_left,
                "threshold": threshold,
                "renews_itself": reason == "term" and lic.auto_renew,
            },
            (str(lic.pk), reason, f"{end.date()}:{threshold}"),
        )


def _renewed_and_expired(draft: DigestDraft, licenses: QuerySet[License], now: datetime) -> None:
    renewals = LicenseRenewal.objects.filter(
        license__in=licenses,
        source=LicenseRenewal.Source.AUTOMATIC,
        created_at__gte=now - LOOKBACK,
    ).select_related("license__product", "license__account")
    for renewal in renewals:
        lic = renewal.license
        draft.add(
            "renewed",
            {
                "customer": lic.account.name,
                "product": lic.product.name,
                "quantity": lic.quantity,
                "new_ends_at": _iso(renewal.new_ends_at),
            },
            (str(lic.pk), "renewed", renewal.new_ends_at.date().isoformat()),
        )
    expired = licenses.filter(
        state=License.State.EXPIRED, ends_at__gte=now - LOOKBACK
    ).select_related("product", "account")
    for lic in expired:
        assert lic.ends_at is not None  # selected by ends_at__gte
        draft.add(
            "expired",
            {
                "customer": lic.account.name,
                "product": lic.product.name,
                "quantity": lic.quantity,
                "ended_at": _iso(lic.ends_at),
            },
            (str(lic.pk), "expired", lic.ends_at.date().isoformat()),
        )


def _overuse(draft: DigestDraft, accounts: QuerySet[SmartAccount]) -> None:
    for over in overused_servers_in(accounts):
        draft.add(
            "overuse",
            {
                "customer": over.server.account.name,
                "server": over.server.name,
                "product": over.product.name,
                "unit": over.product.unit,
                "used": over.used,
                "held": over.held,
            },
            # Told again only once what the server holds changes and it is still over.
            (str(over.server.pk), "overuse", f"{over.held}:{over.product.code}"[:64]),
        )


def _stale(draft: DigestDraft, accounts: QuerySet[SmartAccount]) -> None:
    for server in Server.objects.filter(
        account__in=accounts, state=Server.State.STALE
    ).select_related("account"):
        draft.add(
            "stale_servers",
            {
                "customer": server.account.name,
                "server": server.name,
                "last_sync_at": _iso(server.last_sync_at),
            },
            (str(server.pk), "stale", _iso(server.last_sync_at) or ""),
        )


def _locked_orders(draft: DigestDraft, partner: Organization, now: datetime) -> None:
    orders = Order.objects.filter(
        Q(placed_by=partner) | Q(reseller=partner),
        state=Order.State.LOCKED,
        created_at__lte=now - LOCKED_TOO_LONG,
    ).select_related("customer")
    for order in orders:
        draft.add(
            "locked_orders",
            {
                "reference": order.reference,
                "customer": order.customer.name,
                "placed_at": _iso(order.created_at),
                "days": (now - order.created_at).days,
            },
            (str(order.pk), "locked", "14d"),
        )


def send_digest(*, partner: Organization, now: datetime) -> Digest | None:
    """Build and queue the partner's digest for today; None if empty or already sent today."""
    draft = build_digest(partner, now)
    if draft.empty:
        return None
    content = {
        "partner": partner.name,
        "day": now.date().isoformat(),
        **draft.sections,
    }
    try:
        with transaction.atomic():
            digest = Digest.objects.create(
                partner=partner, day=now.date(), content=content, created_at=now
            )
            Reminder.objects.bulk_create(
                [
                    Reminder(partner=partner, subject_id=s, reason=r, marker=m, digest=digest)
                    for s, r, m in draft.reminders
                ]
            )
            enqueue_email(
                kind=DIGEST_EMAIL, object_id=str(digest.pk), to=partner_recipients(partner)
            )
    except IntegrityError:
        return None  # another run sent today's digest, or reported these already
    return digest


def send_partner_digests(*, now: datetime) -> int:
    partners = Organization.objects.filter(
        Q(kind=Organization.Kind.RESELLER) | Q(kind=Organization.Kind.DISTRIBUTOR)
    ).exclude(digests__day=now.date())
    return sum(1 for partner in partners if send_digest(partner=partner, now=now) is not None)


# --- Customers' own expiry reminders -----------------------------------------------------------


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
        for lic, what, end, days_left, threshold in _ending(
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
