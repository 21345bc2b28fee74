"""The daily jobs: renewals, expiry, stale servers and one digest per partner.

Each job is idempotent and safe to run twice at once: renewals are unique per license and
period, expiry and staleness are conditional updates, and a digest is unique per partner and
day with its reminders unique per subject and threshold.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.services import enqueue_email
from orders.models import Order
from orders.services import partner_recipients
from smartaccounts.actors import Actor
from smartaccounts.models import License, LicenseRenewal, Organization, SmartAccount
from smartaccounts.services import RENEWAL_GRACE, expire_license, renew_subscription
from tokens.models import Server
from tokens.services import mark_stale_servers

from .models import Digest, Reminder

THRESHOLDS = (90, 60, 30, 7)
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
    return {
        "renewed": renew_due_subscriptions(now=now, actor=actor),
        "expired": expire_due_licenses(now=now, actor=actor),
        "stale": len(mark_stale_servers(now=now, actor=actor)),
        "digests": send_partner_digests(now=now),
    }


# --- Digests ----------------------------------------------------------------------------------


SECTIONS = ("terms_ending", "renewed", "expired", "stale_servers", "locked_orders")
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


def threshold_for(days_left: int) -> int | None:
    crossed = [t for t in THRESHOLDS if days_left <= t]
    return min(crossed) if crossed else None


def build_digest(partner: Organization, now: datetime) -> DigestDraft:
    draft = DigestDraft(partner=partner)
    accounts = _accounts_served_by(partner) if partner.kind == Organization.Kind.RESELLER else None
    if accounts is not None:
        _terms_ending(draft, accounts, now)
        _renewed_and_expired(draft, accounts, now)
        _stale(draft, accounts)
    _locked_orders(draft, partner, now)
    told = set(
        Reminder.objects.filter(
            partner=partner, subject_id__in={subject for subject, _, _ in draft.reminders}
        ).values_list("subject_id", "reason", "marker")
    )
    return draft.without(told)


def _terms_ending(draft: DigestDraft, accounts: QuerySet[SmartAccount], now: datetime) -> None:
    horizon = now + timedelta(days=max(THRESHOLDS))
    licenses = (
        License.objects.filter(account__in=accounts, state=License.State.ACTIVE)
        .filter(
            Q(ends_at__gt=now, ends_at__lte=horizon)
            | Q(care_ends_at__gt=now, care_ends_at__lte=horizon)
        )
        .select_related("product", "account")
        .order_by("ends_at", "care_ends_at")
    )
    for lic in licenses:
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
            threshold = threshold_for(days_left)
            if threshold is None:
                continue
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


def _renewed_and_expired(
    draft: DigestDraft, accounts: QuerySet[SmartAccount], now: datetime
) -> None:
    renewals = LicenseRenewal.objects.filter(
        license__account__in=accounts,
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
    expired = License.objects.filter(
        account__in=accounts, state=License.State.EXPIRED, ends_at__gte=now - LOOKBACK
    ).select_related("product", "account")
    for lic in expired:
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
