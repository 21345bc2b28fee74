"""Reads behind the dashboards and the history: scoped to the caller, bounded in queries."""

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import connection
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, When

from kernel.keyset import Merged
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, Organization, SmartAccount
from smartaccounts.renewals import RENEWAL_HORIZON
from smartaccounts.selectors import PoolRow, accounts_for, license_pool
from tokens.models import Server
from tokens.selectors import (
    OverUse,
    overused_servers,
    same_machine_groups,
    server_counts_by_state,
)

from .history import PARTNER_ONLY, PARTNER_ONLY_PREFIX
from .models import RenewalRequest

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

HORIZON = RENEWAL_HORIZON
LIVE_STATES = (Server.State.ACTIVE, Server.State.STALE, Server.State.OFFLINE)


@dataclass
class CapacityLine:
    pool: PoolRow
    in_use: int


@dataclass
class AccountOverview:
    servers_by_state: dict[str, int]
    capacity: list[CapacityLine]
    care: Counter[str]
    stale_servers: list[Server]
    clones: list[Server]
    locked_orders: list[Order]
    ending: list[License]
    overused: list[OverUse]
    capacity_more: int = 0  # applications left out of `capacity` (see CAPACITY_SHOWN)
    # Servers in use bound to one machine (the same fingerprint), grouped by machine.
    same_machine: list[list[Server]] = field(default_factory=list)

    @property
    def attention_count(self) -> int:
        return (
            len(self.stale_servers)
            + len(self.clones)
            + len(self.locked_orders)
            + len(self.ending)
            + len(self.overused)
            + sum(len(group) for group in self.same_machine)
        )


# Applications the dashboard lists before "and N more": an account may hold hundreds.
CAPACITY_SHOWN = 25


def _capacity_shown(lines: list[CapacityLine]) -> list[CapacityLine]:
    """Up to CAPACITY_SHOWN lines, those needing attention first (more in use than assigned,
    care expiring or expired), listed by name as before."""
    urgent = [
        line
        for line in lines
        if line.in_use > line.pool.assigned or line.pool.care_status in ("expiring", "expired")
    ]
    chosen = {id(line) for line in urgent[:CAPACITY_SHOWN]}
    for line in lines:
        if len(chosen) >= CAPACITY_SHOWN:
            break
        chosen.add(id(line))
    return [line for line in lines if id(line) in chosen]


def account_overview(account: SmartAccount, now: datetime) -> AccountOverview:
    """Everything the account dashboard shows, in a fixed number of queries."""
    pool = license_pool(account, now)
    in_use: Counter[str] = Counter()
    for usage in Server.objects.filter(account=account, state__in=LIVE_STATES).values_list(
        "reported_usage", flat=True
    ):
        for code, used in (usage or {}).items():
            if isinstance(used, int):
                in_use[code] += used
    attention = Server.objects.filter(account=account).exclude(state=Server.State.DEACTIVATED)
    ending = (
        License.objects.filter(account=account, state=License.State.ACTIVE)
        .filter(
            Q(ends_at__gt=now, ends_at__lte=now + HORIZON)
            | Q(care_ends_at__gt=now, care_ends_at__lte=now + HORIZON)
        )
        .select_related("product")
        .order_by("ends_at", "care_ends_at")[:20]
    )
    capacity = [CapacityLine(row, in_use.get(row.product.code, 0)) for row in pool]
    shown = _capacity_shown(capacity)
    return AccountOverview(
        servers_by_state=server_counts_by_state(account),
        capacity=shown,
        capacity_more=len(capacity) - len(shown),
        care=Counter(row.care_status for row in pool if row.care_status),
        stale_servers=list(attention.filter(state=Server.State.STALE)[:20]),
        clones=list(attention.filter(clone_suspected_at__isnull=False)[:20]),
        locked_orders=list(
            Order.objects.filter(account=account, state=Order.State.LOCKED).order_by("created_at")[
                :20
            ]
        ),
        ending=list(ending),
        overused=overused_servers(account),
        same_machine=same_machine_groups(account),
    )


SORTS = {
    "ends": ("next_end", "pk"),
    "-ends": ("-next_end", "-pk"),
    "customer": ("account__name", "next_end", "pk"),
    "-customer": ("-account__name", "next_end", "pk"),
    "product": ("product__name", "next_end", "pk"),
    "-product": ("-product__name", "next_end", "pk"),
}


class RenewalAnnotations(TypedDict):
    next_end: datetime
    asked: bool


def _asked() -> Exists:
    """Whether the customer asked its partner to renew the row's license for the end shown
    (a renewal moves the end, and the next term may be asked about again)."""
    return Exists(
        RenewalRequest.objects.filter(license=OuterRef("pk"), period_ends_at=OuterRef("next_end"))
    )


def renewal_opportunities(
    actor: Actor, now: datetime, sort: str = "ends"
) -> "QuerySet[WithAnnotations[License, RenewalAnnotations]]":
    """Across the partner's customers: active licenses whose term or care ends within 90 days."""
    term_soon, care_soon = _ending_soon(now)
    return (
        _renewable(actor)
        .filter(term_soon | care_soon)
        .annotate(
            next_end=Case(
                When(
                    term_soon & care_soon & Q(care_ends_at__lt=F("ends_at")), then=F("care_ends_at")
                ),
                When(term_soon, then=F("ends_at")),
                default=F("care_ends_at"),
            )
        )
        .annotate(asked=_asked())
        .order_by(*SORTS.get(sort, SORTS["ends"]))
    )


def _ending_soon(now: datetime) -> tuple[Q, Q]:
    """A term, and care, ending within the dashboard's 90 days."""
    soon = now + HORIZON
    return Q(ends_at__gt=now, ends_at__lte=soon), Q(care_ends_at__gt=now, care_ends_at__lte=soon)


def _renewable(actor: Actor) -> QuerySet[License]:
    """The partner's customers' active licenses, with what a dashboard row shows."""
    return License.objects.filter(
        account__in=accounts_for(actor), state=License.State.ACTIVE
    ).select_related("product", "account")


def renewal_page_source(actor: Actor, now: datetime, sort: str) -> QuerySet[Any] | Merged:
    """What the renewals dashboard pages through. Sorted by the next end, it is two lists, each
    walked on its own index and merged a page at a time: licenses whose next end is the term's,
    and those whose next end is care's (the two are disjoint). A partner with thousands of
    customers then reads a page's rows, not the whole 90-day window, sorted."""
    if sort not in ("ends", "-ends"):
        return renewal_opportunities(actor, now, sort)
    term_soon, care_soon = _ending_soon(now)
    care_first = care_soon & Q(care_ends_at__lt=F("ends_at"))
    active = _renewable(actor)
    by_term = active.filter(term_soon).exclude(care_first).annotate(next_end=F("ends_at"))
    by_care = active.filter(care_soon).filter(~term_soon | care_first)
    by_care = by_care.annotate(next_end=F("care_ends_at"))
    return Merged((by_term.annotate(asked=_asked()), by_care.annotate(asked=_asked())))


def stale_servers_for(actor: Actor) -> QuerySet[Server]:
    return (
        Server.objects.filter(account__in=accounts_for(actor))
        .filter(Q(state=Server.State.STALE) | Q(clone_suspected_at__isnull=False))
        .exclude(state=Server.State.DEACTIVATED)
        .select_related("account")
        .order_by("last_sync_at")
    )


def locked_orders_for(actor: Actor) -> QuerySet[Order]:
    return (
        Order.objects.visible_to(actor)
        .filter(state=Order.State.LOCKED)
        .select_related("customer")
        .order_by("created_at")
    )


def _events_of(account: SmartAccount, viewer: Actor) -> QuerySet[AuditEvent]:
    """The account's events the viewer may read: a customer never sees its partner's e-mails."""
    events = AuditEvent.objects.filter(account=account)
    org = viewer.organization
    if org is None or org.kind == Organization.Kind.CUSTOMER:
        events = events.exclude(PARTNER_ONLY)
    return events


def history_for(
    account: SmartAccount,
    *,
    viewer: Actor,
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    known_actions: Collection[str] = (),
) -> QuerySet[AuditEvent]:
    """The account's events the viewer may read, newest first. `action` is an event code or the
    start of some (`license`); one of `known_actions` is matched exactly, so an index on the
    action finds it without walking the history."""
    events = (
        _events_of(account, viewer)
        .select_related("actor_user", "organization")
        .order_by("-created_at", "-pk")
    )
    if action in known_actions:
        events = events.filter(action=action)
    elif action:
        events = events.filter(action__startswith=action)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until)
    return events


def history_actions(account: SmartAccount, *, viewer: Actor) -> list[str]:
    """The event codes the account's history holds, in order: one index probe per code (a
    recursive "skip scan", each step the smallest code above the last) rather than a DISTINCT
    over every event."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    account_column = connection.ops.quote_name(AuditEvent._meta.get_field("account").column)
    org = viewer.organization
    hidden = org is None or org.kind == Organization.Kind.CUSTOMER
    # The customer's view leaves out the partner's e-mails (PARTNER_ONLY).
    visible = "AND e.action NOT LIKE %s" if hidden else ""
    step = f"SELECT MIN(e.action) FROM {table} e WHERE e.{account_column} = %s {visible}"
    sql = f"""
        WITH RECURSIVE codes(action) AS (
            SELECT ({step})
            UNION ALL
            SELECT ({step} AND e.action > codes.action) FROM codes
             WHERE codes.action IS NOT NULL
        )
        SELECT action FROM codes WHERE action IS NOT NULL ORDER BY action
    """  # noqa: S608 - table and column names come from the model, values are parameters
    account_id = SmartAccount._meta.pk.get_db_prep_value(account.pk, connection)
    params: list[Any] = [account_id, PARTNER_ONLY_PREFIX + "%"] if hidden else [account_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params])
        return [row[0] for row in cursor.fetchall()]
