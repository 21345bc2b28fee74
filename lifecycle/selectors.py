"""Reads behind the dashboards and the history: scoped to the caller, bounded in queries."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.db.models import Case, F, Q, QuerySet, When

from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, Organization, SmartAccount
from smartaccounts.selectors import PoolRow, accounts_for, license_pool
from tokens.models import Server
from tokens.selectors import OverUse, overused_servers, server_counts_by_state

from .history import PARTNER_ONLY

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

HORIZON = timedelta(days=90)
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

    @property
    def attention_count(self) -> int:
        return (
            len(self.stale_servers)
            + len(self.clones)
            + len(self.locked_orders)
            + len(self.ending)
            + len(self.overused)
        )


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
    return AccountOverview(
        servers_by_state=server_counts_by_state(account),
        capacity=[CapacityLine(row, in_use.get(row.product.code, 0)) for row in pool],
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
    )


SORTS = {
    "ends": ("next_end", "account__name"),
    "-ends": ("-next_end", "account__name"),
    "customer": ("account__name", "next_end"),
    "-customer": ("-account__name", "next_end"),
    "product": ("product__name", "next_end"),
    "-product": ("-product__name", "next_end"),
}


class RenewalAnnotations(TypedDict):
    next_end: datetime


def renewal_opportunities(
    actor: Actor, now: datetime, sort: str = "ends"
) -> "QuerySet[WithAnnotations[License, RenewalAnnotations]]":
    """Across the partner's customers: active licenses whose term or care ends within 90 days."""
    soon = now + HORIZON
    term_soon = Q(ends_at__gt=now, ends_at__lte=soon)
    care_soon = Q(care_ends_at__gt=now, care_ends_at__lte=soon)
    return (
        License.objects.filter(account__in=accounts_for(actor), state=License.State.ACTIVE)
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
        .select_related("product", "account")
        .order_by(*SORTS.get(sort, SORTS["ends"]))
    )


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
) -> QuerySet[AuditEvent]:
    events = (
        _events_of(account, viewer)
        .select_related("actor_user", "organization")
        .order_by("-created_at", "-pk")
    )
    if action:
        events = events.filter(action__startswith=action)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until)
    return events


def history_actions(account: SmartAccount, *, viewer: Actor) -> list[str]:
    return list(
        _events_of(account, viewer).order_by("action").values_list("action", flat=True).distinct()
    )
