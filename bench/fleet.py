"""Build the benchmark fleets.

Small tier: everything through the services, as partners and servers would (1,000 customers,
20,000 licenses, 5,000 activated servers). Large tier: one customer is built through the
services as a template, then copied with `COPY` (20,000 customers, 200,000 licenses, 100,000
activated servers, about 2M audit events): every row the services wrote for the template,
found by following foreign keys from its organization, is written again with new ids, its
names and references renumbered, and fresh secrets hashed with the project's own function.
Both tiers get the same biggest account (50 applications, 2,000 licenses, 500 servers), built
through the services. The medium tier is the large one's build at a tenth of its size.

Then every tier gets realistic dates (`realistic_dates`): term and care ends spread over the
next 400 days, so a share of them lies in every threshold window the daily jobs look at (90,
60, 30 and 7 days), some already ended, some care without a term, and some servers already
stale. The daily jobs' figures come from these dates.

The servers' plain credentials go to a tab-separated file beside the fleet file, for the load
generator; the database only ever holds their hashes.
"""

import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from orders.intake import CustomerData, LineData, OrderData, place_order
from orders.services import unlock_order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, Organization, Product, SmartAccount, User
from smartaccounts.secrets import hash_secret, new_secret
from smartaccounts.services import create_api_key
from tokens import exchange
from tokens import services as servers
from tokens.models import Server, ServerCredential, SigningKey
from tokens.secrets import new_activation_token

APPS = 50
MARKER = "q7tplx"  # stands for the customer number (lower case: e-mail addresses are stored so)


def _log(message: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Base:
    actor: Actor
    reseller: Organization
    products: list[Product]
    api_key: str


def _base() -> Base:
    actor = Actor.system("bench")
    # The root and signing keys come from the project's own commands, as an operator's would.
    call_command("create_root_key", "--if-missing", verbosity=0)
    if not SigningKey.objects.exists():
        call_command("rotate_signing_key", verbosity=0)
    products = [
        Product.objects.get_or_create(
            code=f"BENCH_APP_{n:02d}",
            defaults={"name": f"Bench Application {n:02d}", "unit": "users"},
        )[0]
        for n in range(APPS)
    ]
    reseller, _ = Organization.objects.get_or_create(
        name="Bench Reseller",
        kind=Organization.Kind.RESELLER,
        defaults={"email": "bench@example.com"},
    )
    if not User.objects.filter(email="bench@example.com").exists():
        user = User(email="bench@example.com", organization=reseller, role=User.Role.ADMIN)
        user.set_password("bench-password-123")
        user.save()
    _, api_key = create_api_key(organization=reseller, name="bench", actor=actor)
    return Base(actor=actor, reseller=reseller, products=products, api_key=api_key)


def _customer(
    base: Base, *, number: str, licenses: int, server_count: int
) -> tuple[SmartAccount, list[tuple[str, str]]]:
    """One customer through the services: an order, unlocked, and activated servers holding
    capacity. Returns the account and its servers' (credential, fingerprint)."""
    now = timezone.now()
    products = base.products
    c = int(number) % APPS if number.isdigit() else 0
    lines = [
        LineData(
            product=products[(c + i) % APPS].code,
            quantity=10,
            kind="perpetual" if i % 2 == 0 else "subscription",
            ends_at=None if i % 2 == 0 else now + timedelta(days=365),
            care_ends_at=now + timedelta(days=200 + i),
        )
        for i in range(licenses)
    ]
    order, _ = place_order(
        placed_by=base.reseller,
        data=OrderData(
            reference=f"BENCH-{number}",
            customer=CustomerData(
                name=f"Bench Customer {number}", email=f"c{number}@bench.example"
            ),
            lines=lines,
        ),
        actor=base.actor,
    )
    unlock_order(order=order, actor=base.actor)
    fleet = []
    for s in range(server_count):
        server = servers.create_server(
            account=order.account, name=f"srv-{number}-{s}", purpose="production", actor=base.actor
        )
        token = None
        for p in (s * 2, s * 2 + 1):
            result = servers.assign_capacity(
                server=server, product=products[(c + p) % APPS], quantity=2, actor=base.actor
            )
            token = token or result.token
        fingerprint = f"bench-fp-{number}-{s}"
        assert token is not None  # the first assignment of a pending server mints one
        activation = exchange.activate_server(
            token=token.raw, fingerprint=fingerprint, hostname=f"h{number}-{s}", version="bench"
        )
        fleet.append((activation.credential, fingerprint))
    return order.account, fleet


def build_small(
    *, customers: int, licenses: int, servers_per_customer: int, out: Path
) -> dict[str, Any]:
    base = _base()
    fleet: list[tuple[str, str]] = []
    started = time.perf_counter()
    for c in range(customers):
        _, made = _customer(
            base, number=f"{c:05d}", licenses=licenses, server_count=servers_per_customer
        )
        fleet.extend(made)
        if (c + 1) % 100 == 0:
            _log(f"{c + 1} customers, {len(fleet)} servers ({time.perf_counter() - started:.0f} s)")
    return _finish(base, fleet, out, customers=customers)


def build_large(
    *, customers: int, licenses: int, servers_per_customer: int, audit_events: int, out: Path
) -> dict[str, Any]:
    base = _base()
    account, made = _customer(
        base, number=MARKER, licenses=licenses, server_count=servers_per_customer
    )
    template = _Template.collect(account)
    per_copy = template.rows[AuditEvent]
    repeats = max(1, math.ceil(audit_events / customers / max(1, len(per_copy))))
    _log(
        f"template customer: {sum(len(r) for r in template.rows.values())} rows in "
        f"{len(template.rows)} tables; audit events copied x{repeats}"
    )
    fleet: list[tuple[str, str]] = []
    started = time.perf_counter()
    batch = 1000
    for first in range(0, customers, batch):
        numbers = [f"{c:05d}" for c in range(first, min(customers, first + batch))]
        fleet.extend(template.copy(numbers, audit_repeats=repeats))
        _log(f"{first + len(numbers)} customers copied ({time.perf_counter() - started:.0f} s)")
    # The template itself stays as one more customer, its servers usable too.
    fleet.extend(made)
    return _finish(base, fleet, out, customers=customers + 1)


# --- Realistic dates ---------------------------------------------------------------------------

# Each row's draws come from its id (md5), so a rebuild of the same rows gets the same dates.
_DRAW = "(('x' || substr(md5(id::text || %s), 1, 8))::bit(32)::bigint / 4294967296.0)"

# Ends are spread evenly over this many days ahead: about 2% of them within 7 days, 8% within
# 30, 22% within 90.
HORIZON_DAYS = 400


def realistic_dates() -> dict[str, int]:
    """Spread the fleet's term and care ends over the next HORIZON_DAYS days.

    - subscriptions: 5% ended 1–60 days ago (expired), the rest end 0–400 days ahead, care with
      the term; half renew themselves;
    - perpetual licenses (care without a term): 10% without care, 5% whose care ended 1–200
      days ago, the rest with care ending 0–400 days ahead;
    - servers: 2% stale, silent for 10–60 days; every activated server reports using what it
      holds, 1% of them one more (over-used).

    Returns how many licenses end within each threshold window (and how many servers are
    stale), for the build's log.
    """
    a, b = _DRAW % "'a'", _DRAW % "'b'"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE smartaccounts_license SET
                state = CASE WHEN {a} < 0.05 THEN 'expired'
                        WHEN state = 'expired' THEN 'active' ELSE state END,
                ends_at = now() + CASE WHEN {a} < 0.05 THEN -(1 + {b} * 59) * interval '1 day'
                          ELSE ({a} - 0.05) / 0.95 * {HORIZON_DAYS} * interval '1 day' END,
                auto_renew = {b} < 0.5
            WHERE kind = 'subscription'"""
        )
        cursor.execute(
            "UPDATE smartaccounts_license SET care_ends_at = ends_at WHERE kind = 'subscription'"
        )
        cursor.execute(
            f"""UPDATE smartaccounts_license SET ends_at = NULL,
                care_ends_at = CASE WHEN {a} < 0.10 THEN NULL
                    WHEN {a} < 0.15 THEN now() - (1 + {b} * 199) * interval '1 day'
                    ELSE now() + ({a} - 0.15) / 0.85 * {HORIZON_DAYS} * interval '1 day' END
            WHERE kind = 'perpetual'"""
        )
        cursor.execute(
            f"""UPDATE tokens_server SET state = 'stale',
                last_sync_at = now() - (10 + {b} * 50) * interval '1 day'
            WHERE state = 'active' AND {a} < 0.02"""
        )
        # Servers report what they use: what they hold, and 1 in 100 one more of each product
        # (over-used, flagged as a sync would).
        cursor.execute(
            """UPDATE tokens_server s SET reported_usage = u.usage, overused = false
            FROM (SELECT server_id, jsonb_object_agg(code, held) AS usage FROM (
                    SELECT a.server_id, p.code, sum(a.quantity) AS held
                    FROM tokens_assignment a
                    JOIN smartaccounts_license l ON l.id = a.license_id
                    JOIN smartaccounts_product p ON p.id = l.product_id
                    GROUP BY a.server_id, p.code) h
                GROUP BY server_id) u
            WHERE s.id = u.server_id AND s.state IN ('active', 'stale')"""
        )
        cursor.execute(
            f"""UPDATE tokens_server SET overused = true, reported_usage = (
                SELECT jsonb_object_agg(key, value::int + 1) FROM jsonb_each_text(reported_usage))
            WHERE reported_usage <> '{{}}'::jsonb AND {b} < 0.01"""
        )
        counts: dict[str, int] = {}
        for low, high in ((-60, 0), (0, 7), (7, 30), (30, 60), (60, 90), (90, 400)):
            cursor.execute(
                "SELECT count(*) FROM smartaccounts_license WHERE"
                " coalesce(ends_at, care_ends_at) > now() + %s * interval '1 day'"
                " AND coalesce(ends_at, care_ends_at) <= now() + %s * interval '1 day'",
                [low, high],
            )
            counts[f"ends {low}..{high} d"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tokens_server WHERE state = 'stale'")
        counts["stale servers"] = cursor.fetchone()[0]
    _log(f"realistic dates: {counts}")
    return counts


def stress_day(*, renewals_due: int, expiring: int) -> None:
    """The daily jobs' worst day, set in place: every activated server silent for four days
    (stale today), `renewals_due` subscriptions that renew themselves and `expiring` that do
    not at their term's end, and nothing told yet (no digests, reminders, notices or e-mail)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (
            "lifecycle_reminder",
            "lifecycle_toldthrough",
            "lifecycle_expirynoticeline",
            "lifecycle_digest",
            "lifecycle_expirynotice",
            "notifications_outboundemail",
        ):
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0]:
                cursor.execute(f'DELETE FROM "{table}"')
        cursor.execute(
            "UPDATE tokens_server SET state = 'active', last_sync_at = now() - interval '4 days'"
            " WHERE state IN ('active', 'stale')"
        )
        for count, auto_renew in ((renewals_due, True), (expiring, False)):
            cursor.execute(
                """UPDATE smartaccounts_license SET state = 'active', auto_renew = %s,
                    ends_at = now() - interval '1 hour', care_ends_at = now() - interval '1 hour'
                WHERE id IN (SELECT id FROM smartaccounts_license
                    WHERE kind = 'subscription' AND state = 'active'
                    AND ends_at > now() + interval '1 day'
                    ORDER BY md5(id::text || 'due') LIMIT %s)""",
                [auto_renew, count],
            )
    # The mass UPDATE above leaves a dead version of every server row; in production the
    # autovacuum a day gives would have cleared them before the jobs run.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tokens_server, smartaccounts_license")


def _finish(
    base: Base, fleet: list[tuple[str, str]], out: Path, *, customers: int
) -> dict[str, Any]:
    big = _biggest_account(base)
    servers_file = out.with_suffix(".servers.tsv")
    servers_file.write_text("".join(f"{cred}\t{fp}\n" for cred, fp in fleet))
    servers_file.chmod(0o600)
    data = {
        "servers_file": servers_file.name,
        "servers": len(fleet),
        "customers": customers,
        "api_key": base.api_key,
        "big_account": str(big.pk),
        "reseller": str(base.reseller.pk),
    }
    out.write_text(json.dumps(data))
    out.chmod(0o600)
    return data


def _biggest_account(base: Base) -> SmartAccount:
    """50 applications, 2,000 licenses, 500 servers: the largest account the pages must serve."""
    now, products = timezone.now(), base.products
    per_app = 40
    lines = [
        LineData(
            product=products[n % APPS].code,
            quantity=5,
            kind="perpetual" if n % 3 else "subscription",
            ends_at=None if n % 3 else now + timedelta(days=300),
            care_ends_at=now + timedelta(days=30 + n % 300),
        )
        for n in range(APPS * per_app)
    ]
    account = None
    for chunk in range(0, len(lines), 200):
        order, _ = place_order(
            placed_by=base.reseller,
            data=OrderData(
                reference=f"BENCH-BIG-{chunk // 200}",
                customer=CustomerData(name="Bench Biggest Customer", email="big@bench.example"),
                lines=lines[chunk : chunk + 200],
            ),
            actor=base.actor,
        )
        unlock_order(order=order, actor=base.actor)
        account = order.account
    assert account is not None
    for s in range(500):
        server = servers.create_server(
            account=account, name=f"big-{s:03d}", purpose="production", actor=base.actor
        )
        servers.assign_capacity(
            server=server, product=products[s % APPS], quantity=3, actor=base.actor
        )
    _log("biggest account built")
    return account


# --- Copying the template customer --------------------------------------------------------------


class _Text:
    """A template text value split around the strings each copy replaces (the marker, and the
    ids of the template's rows), so a copy is a join rather than a search."""

    def __init__(self, value: str, pattern: re.Pattern[str]) -> None:
        self.parts = pattern.split(value)  # odd positions hold the strings to replace

    def render(self, replace: dict[str, str]) -> str:
        return "".join(
            replace.get(part, part) if i % 2 else part for i, part in enumerate(self.parts)
        )


@dataclass
class _Template:
    rows: dict[type[models.Model], list[dict[str, Any]]] = field(default_factory=dict)
    order: list[type[models.Model]] = field(default_factory=list)

    @classmethod
    def collect(cls, account: SmartAccount) -> "_Template":
        """Every row that refers, through foreign keys, to the template customer: followed to a
        fixed point so tables added later are copied too."""
        template = cls()
        found: dict[type[models.Model], set[Any]] = {Organization: {account.organization_id}}
        changed = True
        while changed:
            changed = False
            for model in apps.get_models(include_auto_created=True):
                filters = models.Q()
                for fk in model._meta.concrete_fields:
                    target = fk.related_model
                    if fk.is_relation and isinstance(target, type) and target in found:
                        filters |= models.Q(**{f"{fk.attname}__in": found[target]})
                if not filters:
                    continue
                pks = set(model._default_manager.filter(filters).values_list("pk", flat=True))
                if pks - found.get(model, set()):
                    found[model] = found.get(model, set()) | pks
                    changed = True
        for model, pks in found.items():
            names = [f.attname for f in model._meta.concrete_fields]
            template.rows[model] = list(
                model._default_manager.filter(pk__in=pks).order_by().values(*names)
            )
            template.order.append(model)
        template._prepare()
        return template

    def _prepare(self) -> None:
        # Only UUIDs are looked for in text (object ids in audit events); serial ids are too short
        # to tell apart from other digits.
        ids = {
            str(row[m._meta.pk.attname])
            for m in self.order
            if not self._serial(m)
            for row in self.rows[m]
        }
        keys = sorted(ids | {MARKER}, key=len, reverse=True)
        pattern = re.compile("(" + "|".join(re.escape(k) for k in keys) + ")")
        self.texts: dict[tuple[type[models.Model], int, str], _Text] = {}
        for model in self.order:
            for i, row in enumerate(self.rows[model]):
                for f in model._meta.concrete_fields:
                    value = row[f.attname]
                    if isinstance(f, models.JSONField):
                        value = json.dumps(value)
                    if isinstance(value, str) and pattern.search(value):
                        self.texts[(model, i, f.attname)] = _Text(value, pattern)

    def copy(self, numbers: list[str], *, audit_repeats: int) -> list[tuple[str, str]]:
        """Write one copy of the template per number, in one transaction; returns the copies'
        servers as (credential, fingerprint)."""
        fleet: list[tuple[str, str]] = []
        out: dict[type[models.Model], list[tuple[Any, ...]]] = {m: [] for m in self.order}
        next_ids = {m: self._next_id(m, len(numbers)) for m in self.order if self._serial(m)}
        for number in numbers:
            new_pk: dict[tuple[type[models.Model], Any], Any] = {}
            for model in self.order:
                for row in self.rows[model]:
                    old = row[model._meta.pk.attname]
                    if self._serial(model):
                        new_pk[(model, old)] = next_ids[model]
                        next_ids[model] += 1
                    else:
                        new_pk[(model, old)] = uuid.uuid4()
            replace = {str(old): str(new) for (_, old), new in new_pk.items()}
            replace[MARKER] = number
            secrets_for_servers: dict[Any, str] = {}
            for model in self.order:
                repeats = audit_repeats if model is AuditEvent else 1
                for i, row in enumerate(self.rows[model]):
                    for r in range(repeats):
                        values = self._row(model, i, row, new_pk, replace, r)
                        if model is ServerCredential:
                            raw = new_secret(exchange.CREDENTIAL_PREFIX)
                            values["credential_hash"] = hash_secret(raw)
                            secrets_for_servers[values["server_id"]] = raw
                        out[model].append(
                            tuple(values[f.attname] for f in model._meta.concrete_fields)
                        )
            for index, row in enumerate(self.rows[Server]):
                server_id = new_pk[(Server, row["id"])]
                if server_id in secrets_for_servers:
                    fingerprint = self._value(Server, index, row, "fingerprint", replace)
                    fleet.append((secrets_for_servers[server_id], fingerprint))
        with transaction.atomic(), connection.cursor() as cursor:
            for model in self.order:
                columns = ", ".join(
                    connection.ops.quote_name(f.column) for f in model._meta.concrete_fields
                )
                table = connection.ops.quote_name(model._meta.db_table)
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for copied in out[model]:
                        copy.write_row(copied)
            for model, value in next_ids.items():
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
                    [model._meta.db_table, model._meta.pk.column, value - 1],
                )
        return fleet

    def _row(
        self,
        model: type[models.Model],
        index: int,
        row: dict[str, Any],
        new_pk: dict[tuple[type[models.Model], Any], Any],
        replace: dict[str, str],
        repeat: int,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for f in model._meta.concrete_fields:
            value = row[f.attname]
            if f.primary_key:
                value = new_pk[(model, value)] if repeat == 0 else uuid.uuid4()
            elif (
                f.is_relation
                and isinstance(f.related_model, type)
                and f.related_model in self.rows
                and value is not None
            ):
                value = new_pk.get((f.related_model, value), value)
            elif (model, index, f.attname) in self.texts:
                value = self._value(model, index, row, f.attname, replace)
            elif f.attname.endswith("_hash") and value:
                # Single-use secrets of the template (activation tokens, unlock links): each
                # copy gets its own, never used by anyone.
                value = hash_secret(new_activation_token())
            if isinstance(f, models.JSONField) and value is not None:
                value = Jsonb(value)
            if repeat and isinstance(f, models.DateTimeField) and value is not None:
                value = value - timedelta(days=7 * repeat)  # older history
            values[f.attname] = value
        return values

    def _value(
        self,
        model: type[models.Model],
        index: int,
        row: dict[str, Any],
        attname: str,
        replace: dict[str, str],
    ) -> Any:
        text = self.texts.get((model, index, attname))
        if text is None:
            return row[attname]
        rendered = text.render(replace)
        if isinstance(model._meta.get_field(attname), models.JSONField):
            return json.loads(rendered)
        return rendered

    @staticmethod
    def _serial(model: type[models.Model]) -> bool:
        return isinstance(model._meta.pk, models.AutoField | models.BigAutoField)

    @staticmethod
    def _next_id(model: type[models.Model], _: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COALESCE(MAX({connection.ops.quote_name(model._meta.pk.column)}), 0) "
                f"FROM {connection.ops.quote_name(model._meta.db_table)}"
            )
            return int(cursor.fetchone()[0]) + 1
