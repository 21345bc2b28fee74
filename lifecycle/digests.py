"""The partners' daily digest: what needs attention across the customers a partner serves, bounded
in size, told once per threshold."""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from notifications.tasks import enqueue_email
from orders.models import Order, OrderLine
from orders.services import partner_recipients
from smartaccounts.models import License, LicenseRenewal, Organization, SmartAccount
from tokens.models import Server
from tokens.selectors import overused_servers_in

from .models import Digest, Reminder

THRESHOLDS = (90, 60, 30, 7)
ReminderKey = tuple[str, str, str]  # (subject id, reason, marker): what makes an item "told"
# How soon each section's items need the partner: things that already happened first, then
# terms and care by days left (their `urgency`), then renewals, which need nothing.
NOW_URGENT, INFORMATIONAL = 0, 1000
LOCKED_TOO_LONG = timedelta(days=14)
DIGEST_EMAIL = "digest"
LOOKBACK = timedelta(days=30)
SECTIONS = ("terms_ending", "renewed", "expired", "overuse", "stale_servers", "locked_orders")

# The e-mail lists this many items, the most urgent first; the rest are counted, and all of them
# are on the renewals dashboard and in its CSV. So a digest stays small whatever the partner's
# size (a few kilobytes), and its row with it.
DIGEST_LISTED = 20

# Only items new since the partner's last digest are looked for (a threshold crossed, a license
# added, renewed or unlocked since); an hour of overlap covers changes committed while that
# digest was built, the reminders keeping anything from being told twice.
OVERLAP = timedelta(hours=1)


@dataclass
class Entry:
    section: str
    item: dict[str, Any]
    reminder: ReminderKey
    urgency: int


@dataclass
class DigestDraft:
    """What a partner's digest would say: items by section, each with the reminder that
    records it was told."""

    partner: Organization
    entries: list[Entry] = field(default_factory=list)
    _reminders: set[ReminderKey] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._reminders = {entry.reminder for entry in self.entries}

    def add(
        self, section: str, item: dict[str, Any], reminder: ReminderKey, urgency: int = NOW_URGENT
    ) -> None:
        """Add an item, once: a second item with the same reminder is the same news (its
        reminder is unique, and a repeated one would make the digest fail to record)."""
        if reminder in self._reminders:
            return
        self._reminders.add(reminder)
        self.entries.append(Entry(section, item, reminder, urgency))

    def without(self, told: set[ReminderKey]) -> "DigestDraft":
        kept = [entry for entry in self.entries if entry.reminder not in told]
        return DigestDraft(partner=self.partner, entries=kept)

    @property
    def empty(self) -> bool:
        return not self.entries

    @property
    def sections(self) -> dict[str, list[dict[str, Any]]]:
        """Every item, by section."""
        return self._grouped(self.entries)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(items) for name, items in self.sections.items()}

    @property
    def listed(self) -> dict[str, list[dict[str, Any]]]:
        """The DIGEST_LISTED most urgent items, by section (stable: a section keeps its order)."""
        order = {name: n for n, name in enumerate(SECTIONS)}
        ranked = sorted(
            range(len(self.entries)),
            key=lambda n: (self.entries[n].urgency, order[self.entries[n].section], n),
        )
        chosen = sorted(ranked[:DIGEST_LISTED])
        return self._grouped([self.entries[n] for n in chosen])

    @property
    def reminders(self) -> list[ReminderKey]:
        return [entry.reminder for entry in self.entries]

    @staticmethod
    def _grouped(entries: list[Entry]) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
        for entry in entries:
            grouped[entry.section].append(entry.item)
        return grouped


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


def last_digest_at(partner: Organization, now: datetime) -> datetime | None:
    """When the partner's last digest before `now` was built (None: never, or pruned)."""
    return (
        Digest.objects.filter(partner=partner, created_at__lt=now)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def build_digest(partner: Organization, now: datetime) -> DigestDraft:
    """A reseller hears about its customers' accounts; a distributor about the licenses of the
    orders it placed (the reseller it placed them for hears too)."""
    draft = DigestDraft(partner=partner)
    last = last_digest_at(partner, now)
    since = last - OVERLAP if last is not None else None
    if partner.kind == Organization.Kind.RESELLER:
        accounts = _accounts_served_by(partner)
        licenses = License.objects.filter(account__in=accounts)
        _termsending_within(draft, licenses, now, since)
        _renewed_and_expired(draft, licenses, now)
        _overuse(draft, accounts)
        _stale(draft, accounts)
    elif partner.kind == Organization.Kind.DISTRIBUTOR:
        licenses = _licenses_ordered_by(partner)
        _termsending_within(draft, licenses, now, since)
        _renewed_and_expired(draft, licenses, now)
    _locked_orders(draft, partner, now)
    told = set(
        Reminder.objects.filter(
            partner=partner, subject_id__in={subject for subject, _, _ in draft.reminders}
        ).values_list("subject_id", "reason", "marker")
    )
    return draft.without(told)


def ending_within(
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


def _new_since(since: datetime, now: datetime, thresholds: tuple[int, ...]) -> Q:
    """Licenses that may have something new to tell since `since`: a term or care end that
    crossed a threshold since (an indexed range on each end per threshold), or a license added,
    renewed or unlocked since (its ends and state may have changed)."""
    crossed = Q()
    for days in thresholds:
        step = timedelta(days=days)
        crossed |= Q(ends_at__gt=since + step, ends_at__lte=now + step)
        crossed |= Q(care_ends_at__gt=since + step, care_ends_at__lte=now + step)
    changed = (
        Q(created_at__gt=since)
        | Q(pk__in=LicenseRenewal.objects.filter(created_at__gt=since).values("license"))
        | Q(pk__in=OrderLine.objects.filter(order__unlocked_at__gt=since).values("license"))
    )
    return crossed | changed


def _termsending_within(
    draft: DigestDraft, licenses: QuerySet[License], now: datetime, since: datetime | None
) -> None:
    if since is not None:
        licenses = licenses.filter(_new_since(since, now, THRESHOLDS))
    for lic, reason, end, days_left, threshold in ending_within(licenses, now, THRESHOLDS):
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
            urgency=days_left,
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
            urgency=INFORMATIONAL,
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
    counts = draft.counts
    listed = draft.listed
    content = {
        "partner": partner.name,
        "day": now.date().isoformat(),
        **listed,
        "counts": counts,
        "more": sum(counts.values()) - sum(len(items) for items in listed.values()),
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
