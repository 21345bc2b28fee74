"""No hot query scans a large table: on PostgreSQL, with 20,000 licenses, servers, audit events
and orders, the daily jobs' batch selects, the digest, the history's first page, the orders list,
an account's licenses and servers and the renewals dashboard are planned on indexes. And a
tenant's lists read that tenant's rows, not every tenant's filtered down (an index walked with a
filter is no Seq Scan, yet reads as much).

The statements are the real ones, captured while the selectors and jobs run, then EXPLAINed."""

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kernel.keyset import Key, capped_count, seek
from lifecycle.digests import build_digest
from lifecycle.selectors import history_for, renewal_opportunities, renewal_page_source
from orders.api import ORDER_LIST_KEYS
from orders.models import Order
from orders.selectors import order_summaries_for, orders_for
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, SmartAccount
from smartaccounts.renewals import expire_due_licenses, renew_due_subscriptions
from smartaccounts.selectors import invitations_for, license_pool
from tokens.models import Server
from tokens.selectors import servers_of
from tokens.services import mark_stale_servers

from .conftest import requires_postgres
from .factories import CustomerFactory, PartnerLinkFactory

pytestmark = [requires_postgres, pytest.mark.django_db]

NOW = datetime(2031, 3, 10, 6, 0, tzinfo=UTC)
ROWS = 20_000
ACCOUNTS = 100
LARGE = {"smartaccounts_license", "tokens_server", "smartaccounts_auditevent", "orders_order"}
RENEWAL_KEYS = (Key("next_end"), Key("pk"))
ACTIONS = ["license.assigned", "server.synced", "order.placed", "user.invited", "server.stale"]


def seed(cast) -> list[SmartAccount]:
    """ACCOUNTS customers sharing ROWS of each: licenses ending over five years, servers synced
    over a month, a year of audit events, orders placed over a year. Alice serves one customer
    in 25 (and so holds one row in 25), Bob the rest."""
    rng = random.Random(7)
    customers = [CustomerFactory(name=f"Customer {n:03}") for n in range(ACCOUNTS)]
    for n, customer in enumerate(customers):
        reseller = cast.alice_reseller if n % 25 == 0 else cast.bob_reseller
        PartnerLinkFactory(reseller=reseller, customer=customer)
    accounts = [customer.smart_account for customer in customers]
    products = [cast.recording, cast.console, cast.analytics]

    def spread(days: float) -> datetime:
        return NOW + timedelta(days=rng.uniform(-days / 5, days))

    License.objects.bulk_create(
        License(
            account=accounts[n % ACCOUNTS],
            product=products[n % 3],
            kind=License.Kind.SUBSCRIPTION,
            quantity=5,
            state=License.State.ACTIVE if n % 10 else License.State.EXPIRED,
            ends_at=(end := spread(5 * 365)),
            care_ends_at=end,
        )
        for n in range(ROWS)
    )
    Server.objects.bulk_create(
        Server(
            account=accounts[n % ACCOUNTS],
            name=f"pbx-{n}",
            state=Server.State.ACTIVE if n % 20 else Server.State.DEACTIVATED,
            last_sync_at=NOW - timedelta(hours=rng.uniform(0, 24) if n % 500 else 24 * 30),
        )
        for n in range(ROWS)
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            account=accounts[n % ACCOUNTS],
            action=ACTIONS[n % len(ACTIONS)],
            actor_label="tests",
            created_at=NOW - timedelta(minutes=rng.uniform(0, 365 * 24 * 60)),
        )
        for n in range(ROWS)
    )
    Order.objects.bulk_create(
        Order(
            reference=f"PO-{n}",
            placed_by=cast.alice_reseller if n % 25 == 0 else cast.distributor,
            reseller=cast.alice_reseller if n % 25 == 0 else cast.bob_reseller,
            customer=customers[n % ACCOUNTS],
            account=accounts[n % ACCOUNTS],
            state=Order.State.UNLOCKED,
            created_at=NOW - timedelta(minutes=rng.uniform(0, 365 * 24 * 60)),
        )
        for n in range(ROWS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return accounts


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans_of_large_tables(work: Callable[[], object]) -> dict[str, list[str]]:
    """The statements `work` runs that read a large table sequentially, with those tables."""
    with CaptureQueriesContext(connection) as captured:
        work()
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            (row,) = cursor.fetchone()
            plan = (json.loads(row) if isinstance(row, str) else row)[0]["Plan"]
            tables = [
                node["Relation Name"]
                for node in nodes(plan)
                if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE
            ]
            if tables:
                found[sql] = tables
    return found


def rows_read(work: Callable[[], object]) -> int:
    """The most rows of the large tables that one statement `work` runs reads: those it keeps
    and those its filters throw away, EXPLAIN ANALYZEd."""
    with CaptureQueriesContext(connection) as captured:
        work()
    most = 0
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith(("SELECT", "(SELECT")):
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            (row,) = cursor.fetchone()
            plan = (json.loads(row) if isinstance(row, str) else row)[0]["Plan"]
            read = sum(
                (
                    node["Actual Rows"]
                    + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0)
                )
                * node["Actual Loops"]
                for node in nodes(plan)
                if node.get("Relation Name") in LARGE
            )
            most = max(most, read)
    return most


def test_a_tenants_lists_read_its_own_rows(cast):
    """The customer of account 28 has 200 invitation events among 4,000: its Team page reads
    those, not every tenant's invitations kept or thrown away one by one. Alice holds one order
    in 25: page 1 of her orders reads about its 51 rows on each of her two indexes (placed by
    her, placed for her), not 25 times as many along the orders' time index."""
    accounts = seed(cast)
    customer = Actor(label="tests", organization=accounts[28].organization)
    partner = Actor.for_user(cast.alice_admin)

    team = {
        "of a customer": rows_read(lambda: invitations_for(customer)),
        "of a partner": rows_read(lambda: invitations_for(partner)),
    }
    orders_page = rows_read(lambda: seek(order_summaries_for(partner), ORDER_LIST_KEYS, size=50))

    assert team == {"of a customer": 200, "of a partner": 0}
    assert orders_page <= 5 * 51


def test_the_hot_queries_use_indexes(cast):
    accounts = seed(cast)
    account = accounts[25]
    reseller = Actor.for_user(cast.alice_admin)
    system = Actor.system("daily jobs")

    long_ago = NOW - timedelta(days=400)  # before any license ends: the jobs select and stop
    hot: dict[str, Callable[[], object]] = {
        "renewals due": lambda: renew_due_subscriptions(now=long_ago, actor=system),
        "expiry due": lambda: expire_due_licenses(now=long_ago, actor=system),
        "stale candidates": lambda: mark_stale_servers(now=NOW - timedelta(days=60), actor=system),
        "history page 1": lambda: list(history_for(account, viewer=reseller)[:50]),
        "history by action": lambda: list(
            history_for(account, viewer=reseller, action="server.")[:50]
        ),
        "orders list": lambda: list(orders_for(reseller)[:50]),
        "licenses of one account": lambda: license_pool(account, NOW),
        "servers of one account": lambda: list(servers_of(account)[:50]),
        "renewals dashboard": lambda: list(renewal_opportunities(reseller, NOW)[:50]),
        "renewals dashboard by next end": lambda: (
            seek(renewal_page_source(reseller, NOW, "ends"), RENEWAL_KEYS, size=25),
            capped_count(renewal_page_source(reseller, NOW, "ends")),
        ),
        "the reseller's digest": lambda: build_digest(cast.alice_reseller, NOW),
    }

    scans = {name: scans_of_large_tables(work) for name, work in hot.items()}

    assert {name: found for name, found in scans.items() if found} == {}
