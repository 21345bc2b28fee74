import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import (
    Count,
    DateField,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Lower
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from kernel.identifiers import uuid_or_404
from smartaccounts.access import access_manage_accounts
from smartaccounts.actors import Actor
from smartaccounts.models import CARE_EXPIRING_WITHIN, License, Product, SmartAccount
from smartaccounts.selectors import PoolRow, accounts_for, license_pool

from .charts import UsageSeries, daily_use, window
from .documents import (
    Held,
    Subject,
    entitlement_key,
    entitlements,
    held_by,
    held_from,
    issued_claims,
)
from .models import ActivationToken, Assignment, Server, ServerCredential, UsageDay


def picker_accounts_for(actor: Actor, search: str = "") -> QuerySet[SmartAccount]:
    """The customer picker's bare rows: the accounts the actor may open, by part of the name."""
    accounts = accounts_for(actor).select_related("organization")
    if search:
        accounts = accounts.filter(name__icontains=search)
    return accounts


def with_overview_counts(accounts: QuerySet[SmartAccount], now: datetime) -> QuerySet[SmartAccount]:
    """Each account with its active applications, servers in use and care expiring soon.
    Per-row subqueries: filter to one page's accounts before evaluating, unless sorting by a
    count (which needs every row's)."""
    applications = (
        License.objects.filter(account=OuterRef("pk"), state=License.State.ACTIVE)
        .values("account")
        .annotate(n=Count("product", distinct=True))
        .values("n")
    )
    care_expiring = (
        License.objects.filter(
            account=OuterRef("pk"),
            state=License.State.ACTIVE,
            care_ends_at__gt=now,
            care_ends_at__lte=now + CARE_EXPIRING_WITHIN,
        )
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    servers = (
        Server.objects.filter(account=OuterRef("pk"))
        .exclude(state=Server.State.DEACTIVATED)
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return accounts.annotate(
        application_count=Coalesce(Subquery(applications), 0),
        care_expiring_count=Coalesce(Subquery(care_expiring), 0),
        server_count=Coalesce(Subquery(servers), 0),
    )


def accounts_overview_for(actor: Actor, now: datetime, search: str = "") -> QuerySet[SmartAccount]:
    """The customer picker: each account with its counts, in one query."""
    return with_overview_counts(picker_accounts_for(actor, search), now).order_by("name")


def overview_counts_of(accounts: list[SmartAccount], now: datetime) -> list[SmartAccount]:
    """The given accounts (one page of the picker), in their order, with their counts: one
    query over these accounts only."""
    counted = {
        account.pk: account
        for account in with_overview_counts(
            SmartAccount.objects.filter(pk__in=[account.pk for account in accounts]), now
        ).select_related("organization")
    }
    return [counted[account.pk] for account in accounts if account.pk in counted]


def servers_for(actor: Actor) -> QuerySet[Server]:
    return Server.objects.visible_to(actor).select_related("account__organization")


def with_holdings(servers: QuerySet[Server]) -> QuerySet[Server]:
    """Prefetch what each server holds on active licenses (one more query for any number)."""
    return servers.prefetch_related(
        Prefetch(
            "assignments",
            queryset=Assignment.objects.filter(license__state=License.State.ACTIVE)
            .select_related("license__product")
            .order_by("license__product__name"),
        )
    )


def get_server_for(actor: Actor, server_id: object) -> Server:
    return get_object_or_404(with_holdings(servers_for(actor)), pk=uuid_or_404(server_id))


def get_rw_server_for(actor: Actor, server_id: object) -> Server:
    """A server the actor may change: 404 for a server it cannot see, then 403 for a role that
    may only look (`access_manage_accounts`; the services ask it again)."""
    server = get_server_for(actor, server_id)
    access_manage_accounts(actor)
    return server


def servers_of(account: SmartAccount, *, include_deactivated: bool = True) -> QuerySet[Server]:
    """An account's servers with what each holds, per product."""
    servers = Server.objects.filter(account=account).select_related("account")
    if not include_deactivated:
        servers = servers.exclude(state=Server.State.DEACTIVATED)
    return with_holdings(servers)


SERVER_ORDERINGS: dict[str, tuple[Any, ...]] = {
    "name": (Lower("name").asc(), "pk"),
    "-name": (Lower("name").desc(), "-pk"),
    "state": ("state", Lower("name").asc(), "pk"),
    "-state": ("-state", Lower("name").asc(), "pk"),
    "last_sync": (F("last_sync_at").asc(nulls_first=True), Lower("name").asc(), "pk"),
    "-last_sync": (F("last_sync_at").desc(nulls_last=True), Lower("name").asc(), "pk"),
}


def filter_servers(
    servers: QuerySet[Server], *, state: str = "", purpose: str = "", search: str = ""
) -> QuerySet[Server]:
    """The servers list's filters: a state (by default those in use, i.e. not deactivated;
    "all" for every one), a purpose, and part of the name or host name in any case."""
    if state in Server.State.values:
        servers = servers.filter(state=state)
    elif state != "all":
        servers = servers.exclude(state=Server.State.DEACTIVATED)
    if purpose in Server.Purpose.values:
        servers = servers.filter(purpose=purpose)
    if search:
        servers = servers.filter(Q(name__icontains=search) | Q(hostname__icontains=search))
    return servers


@dataclass
class Holding:
    """What a server holds of one application, next to what the account has left."""

    product: Product
    held: int
    used: int | None
    pool: PoolRow
    # What this server may draw on, when less than what the account has available: an offline
    # server's license file carries perpetual capacity only. None: all of it.
    usable: int | None = None

    @property
    def available(self) -> int:
        return self.pool.available

    @property
    def usable_available(self) -> int:
        return self.pool.available if self.usable is None else min(self.usable, self.available)

    @property
    def not_offered(self) -> int:
        """Available capacity this server may not hold (subscriptions, for an offline server)."""
        return self.available - self.usable_available

    @property
    def subscription_only(self) -> bool:
        """Nothing here this server may hold: what is left needs online activation."""
        return self.held == 0 and self.usable_available == 0 and self.not_offered > 0

    @property
    def can_hold_up_to(self) -> int:
        return self.held + self.usable_available

    @property
    def over_by(self) -> int:
        """How much more the server reported in use than it holds (0: within it)."""
        return max((self.used or 0) - self.held, 0)


def holdings(server: Server, now: datetime) -> list[Holding]:
    """One line per application of the account: this server's share and what is available."""
    held = dict(
        Assignment.objects.filter(server=server, license__state=License.State.ACTIVE)
        .values("license__product")
        .annotate(n=Sum("quantity"))
        .values_list("license__product", "n")
    )
    usage = server.reported_usage or {}
    offline = server.state == Server.State.OFFLINE
    perpetual = perpetual_available(server.account) if offline else None
    return [
        Holding(
            product=row.product,
            held=held.get(row.product.pk, 0),
            used=usage.get(row.product.code),
            pool=row,
            usable=None if perpetual is None else perpetual.get(row.product.pk, 0),
        )
        for row in license_pool(server.account, now)
        if row.total or held.get(row.product.pk)
    ]


def perpetual_available(account: SmartAccount) -> dict[int, int]:
    """{product pk: perpetual capacity of the account not yet assigned} (active licenses): what
    an offline server may draw on. One query."""
    return dict(
        License.objects.filter(
            account=account, state=License.State.ACTIVE, kind=License.Kind.PERPETUAL
        )
        .values("product")
        .annotate(n=Sum(F("quantity") - F("assigned")))
        .values_list("product", "n")
    )


# Applications a server's page lists before "and N more": an account may hold hundreds.
HOLDINGS_SHOWN = 50


def bounded_holdings(
    holdings: list[Holding], *, keep: Iterable[str] = (), show_all: bool = False
) -> tuple[list[Holding], int]:
    """The lines a server's page shows and how many it leaves out: always those the server
    holds or reports using and those named in `keep` (a refusal to show beside its field);
    then the others by name up to HOLDINGS_SHOWN lines in all."""
    if show_all:
        return holdings, 0
    kept = set(keep)
    must = [h for h in holdings if h.held or h.used is not None or h.product.code in kept]
    room = max(HOLDINGS_SHOWN - len(must), 0)
    others = [h for h in holdings if h not in must][:room]
    shown = {id(h) for h in (*must, *others)}
    return [h for h in holdings if id(h) in shown], len(holdings) - len(shown)


def current_token(server: Server, now: datetime) -> ActivationToken | None:
    """The token an operator could still use (its secret is not recoverable, only its expiry)."""
    return (
        ActivationToken.objects.filter(
            server=server, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        )
        .order_by("-created_at")
        .first()
    )


def server_counts_by_state(account: SmartAccount) -> dict[str, int]:
    return dict(
        Server.objects.filter(account=account)
        .values("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )


@dataclass
class HeldLine:
    product: Product
    quantity: int
    used: int | None


def held_lines(server: Server) -> list[HeldLine]:
    """Per product, what the server holds: from prefetched assignments (see servers_of)."""
    totals: dict[int, HeldLine] = {}
    usage = server.reported_usage or {}
    for assignment in server.assignments.all():
        product = assignment.license.product
        line = totals.get(product.pk)
        if line is None:
            line = totals[product.pk] = HeldLine(product, 0, usage.get(product.code))
        line.quantity += assignment.quantity
    return sorted(totals.values(), key=lambda line: line.product.name)


def holds_subscription(server: Server) -> bool:
    """Subscription capacity needs online activation."""
    return Assignment.objects.filter(
        server=server,
        license__state=License.State.ACTIVE,
        license__kind=License.Kind.SUBSCRIPTION,
    ).exists()


@dataclass(frozen=True)
class OverUse:
    """A server that last reported using more of a product than it holds."""

    server: Server
    product: Product
    used: int
    held: int

    @property
    def excess(self) -> int:
        return self.used - self.held


def held_per_product(server_ids: Iterable[object]) -> dict[object, dict[str, int]]:
    """{server id: {product code: quantity held on active licenses}}, in one query; a server
    holding nothing is absent."""
    held: dict[object, dict[str, int]] = {}
    for server_id, code, n in (
        Assignment.objects.filter(server__in=list(server_ids), license__state=License.State.ACTIVE)
        .values("server", "license__product__code")
        .annotate(n=Sum("quantity"))
        .values_list("server", "license__product__code", "n")
    ):
        held.setdefault(server_id, {})[code] = n
    return held


def overused_servers_in(accounts: QuerySet[SmartAccount]) -> list[OverUse]:
    """Over-use across a partner's accounts (its dashboard and digest): the servers flagged
    over-used (Server.overused, kept by syncs and capacity changes), checked again against
    what they hold now. Reads the flagged few, whatever the number of servers."""
    return _over_use_of(Server.objects.filter(account__in=accounts, overused=True))


def overused_servers(account: SmartAccount) -> list[OverUse]:
    """The account's servers using more than they hold, one entry per server and product,
    worked out from what each reports and holds now."""
    return _over_use_of(Server.objects.filter(account=account))


def _over_use_of(candidates: QuerySet[Server]) -> list[OverUse]:
    """Per server and product, reported use above what the server holds on active licenses,
    in three queries. Pending and deactivated servers report nothing that counts."""
    servers = list(
        candidates.exclude(state__in=[Server.State.PENDING, Server.State.DEACTIVATED])
        .exclude(reported_usage={})
        .select_related("account")
        .order_by("account__name", "name", "pk")
    )
    if not servers:
        return []
    held = held_per_product(s.pk for s in servers)
    over = {server.pk: server.over_use(held.get(server.pk, {})) for server in servers}
    codes = {code for found in over.values() for code in found}
    products = {p.code: p for p in Product.objects.filter(code__in=codes)}
    return [
        OverUse(server=server, product=products[code], used=used, held=held_n)
        for server in servers
        for code, (used, held_n) in sorted(over[server.pk].items())
        if code in products  # a code the portal does not sell names nothing to fix
    ]


def over_use_of(
    server: Server, held: Mapping[str, int], products: Mapping[str, Product]
) -> list[OverUse]:
    """One server's over-use, given what it holds and the products already at hand per code
    (any other product named in its report costs one query)."""
    over = server.over_use(held)
    missing = set(over) - set(products)
    if missing:
        products = {**products, **{p.code: p for p in Product.objects.filter(code__in=missing)}}
    return [
        OverUse(server=server, product=products[code], used=used, held=held_n)
        for code, (used, held_n) in sorted(over.items())
        if code in products
    ]


def usage_days_of(server: Server, first_day: date) -> list[tuple[date, dict[str, Any]]]:
    """The server's recorded use per day from `first_day` on, with the last day recorded before
    it (a steady server records nothing: that use went on into the window), oldest first. One
    query, whatever the number of days."""
    before = (
        UsageDay.objects.filter(server=server, day__lt=first_day).order_by("-day").values("day")[:1]
    )
    start = Coalesce(Subquery(before), Value(first_day), output_field=DateField())
    return list(
        UsageDay.objects.filter(server=server, day__gte=start)
        .order_by("day")
        .values_list("day", "peaks")
    )


def usage_series_of(server: Server, every: list[Holding], now: datetime) -> list[UsageSeries]:
    """One series per application the server holds, reports or recorded using in the last
    WINDOW_DAYS days (UTC), in the order of `every` (the server's holdings), then by code. One
    query for the days, one more only for an application the account has no license of."""
    if server.is_pending:
        return []
    days = window(now.astimezone(UTC).date())
    rows = usage_days_of(server, days[0])
    reported = server.reported_usage or {}
    if not rows and not reported and server.first_sync_at is None:
        return []  # never reported any use (not synced yet, or activated offline)
    recorded = {code for _, peaks in rows for code in peaks} | set(reported)
    by_code = {h.product.code: h for h in every}
    codes = [h.product.code for h in every if h.held or h.product.code in recorded]
    missing = sorted(recorded - set(by_code))
    products = {p.code: p for p in Product.objects.filter(code__in=missing)} if missing else {}
    codes += [code for code in missing if code in products]
    first_use = server.first_sync_at.astimezone(UTC).date() if server.first_sync_at else None
    until = server.deactivated_at.astimezone(UTC).date() if server.deactivated_at else None
    series = []
    for code in codes:
        holding = by_code.get(code)
        product = holding.product if holding else products[code]
        series.append(
            UsageSeries(
                code=code,
                name=product.name,
                unit=product.unit,
                held=holding.held if holding else 0,
                days=tuple(days),
                values=tuple(
                    daily_use(code, rows, days, reported=reported, first_use=first_use, until=until)
                ),
            )
        )
    return series


@dataclass(frozen=True)
class OfflineFileLine:
    name: str
    unit: str
    quantity: int
    care_ends_at: datetime | None


@dataclass(frozen=True)
class OfflineFile:
    """The last license file issued to an offline server, and whether it still says what the
    server holds."""

    issued_at: datetime | None
    lines: list[OfflineFileLine]
    out_of_date: bool


def last_offline_file(
    server: Server, now: datetime, assignments: Iterable[Assignment] | None = None
) -> OfflineFile | None:
    """The last license file issued to `server`, compared with what it holds now: one query,
    none when its assignments on active licenses are given (prefetched, see with_holdings)."""
    if not server.offline_document:
        return None
    claims = issued_claims(server.offline_document)
    issued = claims.get("entitlements") or []
    totals: dict[str, OfflineFileLine] = {}
    for item in issued:
        code = item.get("product", "")
        care = parse_datetime(item["care_ends_at"]) if item.get("care_ends_at") else None
        line = totals.get(code)
        if line is None:
            totals[code] = OfflineFileLine(
                item.get("name", code), item.get("unit", ""), item.get("quantity", 0), care
            )
        else:
            latest = max((c for c in (line.care_ends_at, care) if c), default=None)
            totals[code] = OfflineFileLine(
                line.name, line.unit, line.quantity + item.get("quantity", 0), latest
            )
    held = held_by(server) if assignments is None else held_from(assignments)
    current = entitlements(held, now)
    out_of_date = sorted(map(entitlement_key, issued), key=repr) != sorted(
        map(entitlement_key, current), key=repr
    )
    iat = claims.get("iat")
    return OfflineFile(
        issued_at=datetime.fromtimestamp(iat, UTC) if isinstance(iat, int) else None,
        lines=sorted(totals.values(), key=lambda line: line.name),
        out_of_date=out_of_date,
    )


# --- The sync hot path ------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncSnapshot:
    """Everything a sync needs, read in one query."""

    credential_hash: str
    revoked: bool
    server_id: str
    server_name: str
    state: str
    fingerprint: str
    reported_version: str
    reported_usage: dict[str, Any]
    overused: bool
    last_sync_at: datetime | None
    first_sync_at: datetime | None
    clone_suspected_at: datetime | None
    account_id: str
    account_name: str
    held: list[Held]

    @property
    def subject(self) -> Subject:
        return Subject(self.server_id, self.fingerprint, self.account_id, self.account_name)


def unknown_products(codes: Iterable[str]) -> set[str]:
    """Those of the codes that name no product in the catalog (one query; none when empty)."""
    wanted = set(codes)
    if not wanted:
        return set()
    return wanted - set(Product.objects.filter(code__in=wanted).values_list("code", flat=True))


@functools.cache
def _snapshot_sql() -> str:
    """The sync's one read: the credential, its server and account, and one row per assignment
    on an active license (a server with none: one row whose assignment columns are NULL). Each
    column is named after the SyncSnapshot or Held member it fills."""
    credential, server, account = (
        ServerCredential._meta.db_table,
        Server._meta.db_table,
        SmartAccount._meta.db_table,
    )
    assignment, lic, product = (
        Assignment._meta.db_table,
        License._meta.db_table,
        Product._meta.db_table,
    )
    return f"""
        SELECT c.credential_hash AS credential_hash, c.revoked_at AS revoked_at,
               s.id AS server_id, s.name AS server_name, s.state AS state,
               s.fingerprint AS fingerprint, s.reported_version AS reported_version,
               s.reported_usage AS reported_usage, s.overused AS overused,
               s.last_sync_at AS last_sync_at, s.first_sync_at AS first_sync_at,
               s.clone_suspected_at AS clone_suspected_at, a.id AS account_id,
               a.name AS account_name, asg.quantity AS quantity, l.id AS license_id,
               l.kind AS kind, l.ends_at AS ends_at, l.care_ends_at AS care_ends_at,
               p.code AS product, p.name AS name, p.unit AS unit
          FROM {credential} c
          JOIN {server} s ON s.id = c.server_id
          JOIN {account} a ON a.id = s.account_id
          LEFT JOIN {assignment} asg ON asg.server_id = s.id
          LEFT JOIN {lic} l ON l.id = asg.license_id AND l.state = %s
          LEFT JOIN {product} p ON p.id = l.product_id
         WHERE c.credential_hash = %s
         ORDER BY p.code, l.created_at
    """  # noqa: S608 - table names come from the models, values are parameters


# Each column's model field: its to_python() turns what either database's driver returns
# (a uuid or its hex digits, a datetime or its text) into the field's Python value.
_UUID = Server._meta.get_field("id")
_WHEN = Server._meta.get_field("last_sync_at")


def _uuid(value: Any) -> str:
    return str(_UUID.to_python(value))


def _when(value: Any) -> datetime | None:
    moment: datetime | None = _WHEN.to_python(value)
    # SQLite stores UTC without its zone; PostgreSQL's timestamptz comes with it.
    if moment is not None and timezone.is_naive(moment):
        return timezone.make_aware(moment, UTC)
    return moment


def _usage(value: Any) -> dict[str, Any]:
    # Django's backends hand a JSON column to the field as text (JSONField.from_db_value).
    decoded = json.loads(value) if isinstance(value, str | bytes) else value
    return decoded if isinstance(decoded, dict) else {}


def _read(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """The rows of a read, each by column name.

    On PostgreSQL the statement is bound on the server, so psycopg prepares it after
    `prepare_threshold` uses (settings: DATABASE_PREPARE_THRESHOLD) and PostgreSQL keeps its
    plan: Django's own cursors bind on the client, and planning the sync's join costs several
    times running it (docs/sync-path.md). The driver's cursor is wrapped as Django wraps its
    own (execute wrappers, query logging, error translation); the connection comes from
    Django's cursor, with Django's health check of a reused connection."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        if db.vendor != "postgresql":
            cursor.execute(sql, params)
            return _named(cursor)
        with db.wrap_database_errors:
            bound_on_server = psycopg.Cursor(db.connection)
    # make_cursor wraps a driver cursor; the stubs want it wrapped already.
    wrap = db.make_debug_cursor if db.queries_logged else db.make_cursor
    with wrap(bound_on_server) as cursor:  # type: ignore[arg-type]
        cursor.execute(sql, params)
        return _named(cursor)


def _named(cursor: Any) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def sync_snapshot(credential_hash: str) -> SyncSnapshot | None:
    """The credential, its server and account and what the server holds on its active
    licenses, in one query, read by column name.

    Thousands of servers call sync every hour. One SQL statement, kept prepared: the same
    read as a QuerySet (`.values()` over the five joins) is bound on the client, planned anew
    each time and costs more to build and compile than the rest of the sync (docs/sync-path.md
    has the figures)."""
    rows = _read(_snapshot_sql(), [License.State.ACTIVE, credential_hash])
    if not rows:
        return None
    held = [
        Held(
            product=row["product"],
            name=row["name"],
            unit=row["unit"],
            quantity=row["quantity"],
            kind=row["kind"],
            license_id=_uuid(row["license_id"]),
            ends_at=_when(row["ends_at"]),
            care_ends_at=_when(row["care_ends_at"]),
        )
        for row in rows
        if row["license_id"] is not None
    ]
    first = rows[0]
    return SyncSnapshot(
        credential_hash=first["credential_hash"],
        revoked=first["revoked_at"] is not None,
        server_id=_uuid(first["server_id"]),
        server_name=first["server_name"],
        state=first["state"],
        fingerprint=first["fingerprint"],
        reported_version=first["reported_version"],
        reported_usage=_usage(first["reported_usage"]),
        overused=bool(first["overused"]),
        last_sync_at=_when(first["last_sync_at"]),
        first_sync_at=_when(first["first_sync_at"]),
        clone_suspected_at=_when(first["clone_suspected_at"]),
        account_id=_uuid(first["account_id"]),
        account_name=first["account_name"],
        held=held,
    )


# --- Servers on one machine -------------------------------------------------------------------

# A server in use has a fingerprint (bound at activation) and counts: pending servers have none
# yet, deactivated ones no longer count.
LIVE_STATES = (Server.State.ACTIVE, Server.State.STALE, Server.State.OFFLINE)
# How many servers on the same machine a page names (a copied image may be many times over).
TWINS_SHOWN = 10


def _live_with_fingerprint() -> QuerySet[Server]:
    return Server.objects.filter(state__in=LIVE_STATES).exclude(fingerprint="")


def same_machine_as(server: Server) -> list[Server]:
    """The account's other servers in use bound to this server's machine fingerprint: a copied
    virtual machine activated again, or one machine activated twice. One query; none for a
    server not in use."""
    if server.state not in LIVE_STATES or not server.fingerprint:
        return []
    return list(
        _live_with_fingerprint()
        .filter(account_id=server.account_id, fingerprint=server.fingerprint)
        .exclude(pk=server.pk)
        .order_by(Lower("name"), "pk")[:TWINS_SHOWN]
    )


def _shared_fingerprints(account_ref: Any) -> QuerySet[Any]:
    """Fingerprints bound to more than one server in use of the account `account_ref` names
    (an account, or an OuterRef to one)."""
    return (
        _live_with_fingerprint()
        .filter(account=account_ref)
        .values("fingerprint")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values("fingerprint")
    )


def same_machine_groups(account: SmartAccount, limit: int = 20) -> list[list[Server]]:
    """The account's servers in use that share a machine fingerprint, grouped by machine (at
    most `limit` servers read, in one query)."""
    servers = (
        _live_with_fingerprint()
        .filter(account=account, fingerprint__in=_shared_fingerprints(account))
        .order_by("fingerprint", Lower("name"), "pk")[:limit]
    )
    groups: dict[str, list[Server]] = {}
    for server in servers:
        groups.setdefault(server.fingerprint, []).append(server)
    return list(groups.values())


def new_same_machine_servers(
    accounts: QuerySet[SmartAccount], since: datetime | None
) -> QuerySet[Server]:
    """Across `accounts`, each server in use that was activated on a machine an earlier-activated
    server in use of its account is bound to (the later of each pair: the copy), activated
    after `since`; annotated with `twin_name`, the earliest such server. For the partner's
    digest: count it in SQL and read the first few."""
    earlier = (
        _live_with_fingerprint()
        .filter(account=OuterRef("account"), fingerprint=OuterRef("fingerprint"))
        .filter(
            Q(activated_at__lt=OuterRef("activated_at"))
            | Q(activated_at=OuterRef("activated_at"), pk__lt=OuterRef("pk"))
        )
        .order_by("activated_at", "pk")
    )
    servers = _live_with_fingerprint().filter(account__in=accounts, activated_at__isnull=False)
    if since is not None:
        servers = servers.filter(activated_at__gt=since)
    return servers.annotate(twin_name=Subquery(earlier.values("name")[:1])).filter(
        twin_name__isnull=False
    )
