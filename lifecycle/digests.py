"""The partners' daily digest: what needs attention across the customers a partner serves, bounded
in size, told once per threshold.

Each section is counted in SQL and only the items the e-mail lists are read (the DIGEST_LISTED
most urgent of each, of which the e-mail shows the DIGEST_LISTED most urgent overall): a
digest costs the same queries for ten items or a hundred thousand. What was told is kept as one
watermark per partner and threshold (`ToldThrough`, see lifecycle.told), not one row per item;
only over-use, told again when what the server holds changes, keeps a row per flagged server.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse

from notifications.tasks import enqueue_email
from orders.models import Order, OrderLine
from orders.services import partner_recipients
from smartaccounts.models import License, LicenseRenewal, Organization, SmartAccount
from tokens.models import Server
from tokens.selectors import new_same_machine_servers, overused_servers_in
from tokens.services import stale_after

from .models import Digest, Reminder, ToldThrough
from .told import EVENTS, Marks, days_left, marks_of, new_ends, told_now
from .told import threshold_for as _threshold_for

THRESHOLDS = (90, 60, 30, 7)
ReminderKey = tuple[str, str, str]  # (subject id, reason, marker): an over-use told
# How soon each section's items need the partner: things that already happened first, then
# terms and care by days left (their `urgency`), then renewals, which need nothing.
NOW_URGENT, INFORMATIONAL = 0, 1000
LOCKED_TOO_LONG = timedelta(days=14)
DIGEST_EMAIL = "digest"
LOOKBACK = timedelta(days=30)
SECTIONS = (
    "terms_ending",
    "renewed",
    "expired",
    "overuse",
    "same_machine",
    "stale_servers",
    "locked_orders",
)
TOPIC = ToldThrough.Topic.DIGEST

# The e-mail lists this many items, the most urgent first; the rest are counted, and all of them
# are on the renewals dashboard and in its CSV. So a digest stays small whatever the partner's
# size (a few kilobytes), and its row with it.
DIGEST_LISTED = 20


@dataclass
class Entry:
    section: str
    item: dict[str, Any]
    urgency: int


@dataclass
class DigestDraft:
    """What a partner's digest would say: per section, how many items are new (`counts`) and
    the most urgent of them (`entries`, at most DIGEST_LISTED a section); with the over-use
    reminders to record."""

    partner: Organization
    entries: list[Entry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {name: 0 for name in SECTIONS})
    # Ordered and looked up by key: a mass expiry can flag thousands of servers at once.
    reminders: dict[ReminderKey, None] = field(default_factory=dict)

    def add(self, section: str, item: dict[str, Any], urgency: int = NOW_URGENT) -> None:
        self.entries.append(Entry(section, item, urgency))

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    @property
    def sections(self) -> dict[str, list[dict[str, Any]]]:
        """The items read, by section (each section's most urgent, at most DIGEST_LISTED)."""
        return self._grouped(self.entries)

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

    @staticmethod
    def _grouped(entries: list[Entry]) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
        for entry in entries:
            grouped[entry.section].append(entry.item)
        return grouped


def threshold_for(days_left: int, thresholds: tuple[int, ...] = THRESHOLDS) -> int | None:
    return _threshold_for(days_left, thresholds)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _accounts_served_by(partner: Organization) -> QuerySet[SmartAccount]:
    return SmartAccount.objects.filter(organization__reseller_links__reseller=partner)


def _licenses_ordered_by(partner: Organization) -> QuerySet[License]:
    return License.objects.filter(
        pk__in=OrderLine.objects.filter(order__placed_by=partner).values("license")
    )


def build_digest(partner: Organization, now: datetime) -> DigestDraft:
    """A reseller hears about its customers' accounts; a distributor about the licenses of the
    orders it placed (the reseller it placed them for hears too). Only what is new since the
    partner's watermarks."""
    draft = DigestDraft(partner=partner)
    marks = marks_of([partner.pk], TOPIC).get(str(partner.pk), {})
    told_at = marks[EVENTS].told_at if EVENTS in marks else None
    if partner.kind == Organization.Kind.RESELLER:
        accounts = _accounts_served_by(partner)
        licenses = License.objects.filter(account__in=accounts)
        _terms_ending(draft, licenses, now, marks)
        _renewed_and_expired(draft, licenses, now, told_at)
        _overuse(draft, accounts)
        _same_machine(draft, accounts, now, told_at)
        _stale(draft, accounts, told_at)
    elif partner.kind == Organization.Kind.DISTRIBUTOR:
        licenses = _licenses_ordered_by(partner)
        _terms_ending(draft, licenses, now, marks)
        _renewed_and_expired(draft, licenses, now, told_at)
    _locked_orders(draft, partner, now, told_at)
    return draft


def _counted(draft: DigestDraft, section: str, queryset: QuerySet[Any]) -> QuerySet[Any]:
    """Count the section's new items in SQL; the caller reads only the first DIGEST_LISTED."""
    draft.counts[section] += queryset.count()
    return queryset[:DIGEST_LISTED] if draft.counts[section] else queryset.none()


def _terms_ending(
    draft: DigestDraft, licenses: QuerySet[License], now: datetime, marks: Marks
) -> None:
    active = licenses.filter(state=License.State.ACTIVE).select_related("product", "account")
    ends = {
        "term": active.filter(new_ends("ends_at", now, THRESHOLDS, marks)),
        # A subscription's care ends with its term: told once, as the term.
        "care": active.filter(new_ends("care_ends_at", now, THRESHOLDS, marks)).filter(
            Q(ends_at__isnull=True) | ~Q(care_ends_at=F("ends_at"))
        ),
    }
    found: list[Entry] = []
    for reason, queryset in ends.items():
        end_field = "ends_at" if reason == "term" else "care_ends_at"
        for lic in _counted(draft, "terms_ending", queryset.order_by(end_field, "pk")):
            end = getattr(lic, end_field)
            left = days_left(end, now)
            found.append(
                Entry(
                    "terms_ending",
                    {
                        "what": reason,
                        "customer": lic.account.name,
                        "product": lic.product.name,
                        "quantity": lic.quantity,
                        "unit": lic.product.unit,
                        "kind": lic.kind,
                        "ends_at": _iso(end),
                        "days_left": left,
                        "threshold": threshold_for(left),
                        "renews_itself": reason == "term" and lic.auto_renew,
                    },
                    left,
                )
            )
    # Nearest end first, terms and care together.
    draft.entries.extend(sorted(found, key=lambda entry: entry.item["ends_at"]))


def _renewed_and_expired(
    draft: DigestDraft, licenses: QuerySet[License], now: datetime, told_at: datetime | None
) -> None:
    since = max(told_at, now - LOOKBACK) if told_at else now - LOOKBACK
    renewals = LicenseRenewal.objects.filter(
        license__in=licenses, source=LicenseRenewal.Source.AUTOMATIC
    ).select_related("license__product", "license__account")
    renewals = (
        renewals.filter(created_at__gt=since) if told_at else renewals.filter(created_at__gte=since)
    )
    for renewal in _counted(draft, "renewed", renewals.order_by("created_at", "pk")):
        lic = renewal.license
        draft.add(
            "renewed",
            {
                "customer": lic.account.name,
                "product": lic.product.name,
                "quantity": lic.quantity,
                "unit": lic.product.unit,
                "new_ends_at": _iso(renewal.new_ends_at),
            },
            urgency=INFORMATIONAL,
        )
    expired = licenses.filter(state=License.State.EXPIRED, ends_at__lte=now).select_related(
        "product", "account"
    )
    expired = expired.filter(ends_at__gt=since) if told_at else expired.filter(ends_at__gte=since)
    for lic in _counted(draft, "expired", expired.order_by("ends_at", "pk")):
        draft.add(
            "expired",
            {
                "customer": lic.account.name,
                "product": lic.product.name,
                "quantity": lic.quantity,
                "unit": lic.product.unit,
                "ended_at": _iso(lic.ends_at),
            },
        )


def _overuse(draft: DigestDraft, accounts: QuerySet[SmartAccount]) -> None:
    """The flagged few servers; each told again only once what it holds changes."""
    found = [
        (over, (str(over.server.pk), "overuse", f"{over.held}:{over.product.code}"[:64]))
        for over in overused_servers_in(accounts)
    ]
    told = set(
        Reminder.objects.filter(
            partner=draft.partner,
            reason="overuse",
            subject_id__in={key[0] for _, key in found},
        ).values_list("subject_id", "reason", "marker")
    )
    for over, key in found:
        if key in told or key in draft.reminders:
            continue
        draft.reminders[key] = None
        draft.counts["overuse"] += 1
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
        )


def _same_machine(
    draft: DigestDraft, accounts: QuerySet[SmartAccount], now: datetime, told_at: datetime | None
) -> None:
    """Servers activated since the last digest on a machine another server in use of the same
    account is bound to (the same fingerprint): possible clones. Each named with the server it
    copies, once."""
    since = max(told_at, now - LOOKBACK) if told_at else now - LOOKBACK
    copies = new_same_machine_servers(accounts, since).select_related("account")
    for server in _counted(draft, "same_machine", copies.order_by("activated_at", "pk")):
        draft.add(
            "same_machine",
            {
                "customer": server.account.name,
                "server": server.name,
                "twin": server.twin_name,
                "activated_at": _iso(server.activated_at),
                "path": reverse("tokens:server", args=[server.pk]),
            },
        )


def _stale(draft: DigestDraft, accounts: QuerySet[SmartAccount], told_at: datetime | None) -> None:
    """Servers gone stale since the last digest: silent since before its time less the stale
    delay (the stale job marks them in the same run, before the digests)."""
    stale = Server.objects.filter(account__in=accounts, state=Server.State.STALE)
    if told_at is not None:
        stale = stale.filter(last_sync_at__gte=told_at - stale_after())
    for server in _counted(
        draft, "stale_servers", stale.select_related("account").order_by("last_sync_at", "pk")
    ):
        draft.add(
            "stale_servers",
            {
                "customer": server.account.name,
                "server": server.name,
                "last_sync_at": _iso(server.last_sync_at),
            },
        )


def _locked_orders(
    draft: DigestDraft, partner: Organization, now: datetime, told_at: datetime | None
) -> None:
    orders = Order.objects.filter(
        Q(placed_by=partner) | Q(reseller=partner),
        state=Order.State.LOCKED,
        created_at__lte=now - LOCKED_TOO_LONG,
    )
    if told_at is not None:
        orders = orders.filter(created_at__gt=told_at - LOCKED_TOO_LONG)
    for order in _counted(
        draft, "locked_orders", orders.select_related("customer").order_by("created_at", "pk")
    ):
        draft.add(
            "locked_orders",
            {
                "reference": order.reference,
                "customer": order.customer.name,
                "placed_at": _iso(order.created_at),
                "days": (now - order.created_at).days,
            },
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
            told_now([partner.pk], TOPIC, (*THRESHOLDS, EVENTS), now)
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
