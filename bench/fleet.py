"""Build the benchmark fleet through the services, as partners and servers would."""

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypedDict

from django.utils import timezone

from orders.services import CustomerData, LineData, OrderData, place_order, unlock_order
from smartaccounts.actors import Actor
from smartaccounts.models import Organization, Product, SmartAccount, User
from smartaccounts.services import create_api_key
from tokens import exchange
from tokens import services as servers

APPS = 50


def _log(message: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {message}", flush=True)


class FleetServer(TypedDict):
    credential: str
    fingerprint: str


class Fleet(TypedDict):
    """What the build leaves in bench/fleet.json for the load generator."""

    servers: list[FleetServer]
    api_key: str
    big_account: str


def build(
    *, customers: int, licenses_per_customer: int, servers_per_customer: int, out: Path
) -> Fleet:
    actor = Actor.system("bench")
    now = timezone.now()
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
    user = User.objects.filter(email="bench@example.com").first()
    if user is None:
        user = User(email="bench@example.com", organization=reseller, role=User.Role.ADMIN)
        user.set_password("bench-password-123")
        user.save()
    _, api_key = create_api_key(organization=reseller, name="bench", actor=actor)

    fleet: list[FleetServer] = []
    started = time.perf_counter()
    for c in range(customers):
        lines = [
            LineData(
                product=products[(c + i) % APPS].code,
                quantity=10,
                kind="perpetual" if i % 2 == 0 else "subscription",
                ends_at=None if i % 2 == 0 else now + timedelta(days=365),
                care_ends_at=now + timedelta(days=200 + i),
            )
            for i in range(licenses_per_customer)
        ]
        order, _ = place_order(
            placed_by=reseller,
            data=OrderData(
                reference=f"BENCH-{c:05d}",
                customer=CustomerData(name=f"Bench Customer {c:05d}", email=f"c{c}@bench.example"),
                lines=lines,
            ),
            actor=actor,
        )
        unlock_order(order=order, actor=actor)
        for s in range(servers_per_customer):
            server = servers.create_server(
                account=order.account, name=f"srv-{c}-{s}", purpose="production", actor=actor
            )
            token = None
            for p in (s * 2, s * 2 + 1):
                result = servers.assign_capacity(
                    server=server,
                    product=products[(c + p) % APPS],
                    quantity=2,
                    actor=actor,
                )
                token = token or result.token
            assert token is not None  # capacity on a pending server mints its token
            fingerprint = f"bench-fp-{c}-{s}"
            activation = exchange.activate_server(
                token=token.raw, fingerprint=fingerprint, hostname=f"h{c}-{s}", version="bench"
            )
            fleet.append({"credential": activation.credential, "fingerprint": fingerprint})
        if (c + 1) % 100 == 0:
            _log(f"{c + 1} customers, {len(fleet)} servers ({time.perf_counter() - started:.0f} s)")

    big = _biggest_account(reseller, products, actor, now)
    data: Fleet = {"servers": fleet, "api_key": api_key, "big_account": str(big.pk)}
    out.write_text(json.dumps(data))
    return data


def _biggest_account(
    reseller: Organization, products: list[Product], actor: Actor, now: datetime
) -> SmartAccount:
    """50 applications, 2,000 licenses, 500 servers: the largest account the pages must serve."""
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
            placed_by=reseller,
            data=OrderData(
                reference=f"BENCH-BIG-{chunk // 200}",
                customer=CustomerData(name="Bench Biggest Customer", email="big@bench.example"),
                lines=lines[chunk : chunk + 200],
            ),
            actor=actor,
        )
        unlock_order(order=order, actor=actor)
        account = order.account
    assert account is not None  # the loop above ran: there are lines
    for s in range(500):
        server = servers.create_server(
            account=account, name=f"big-{s:03d}", purpose="production", actor=actor
        )
        servers.assign_capacity(server=server, product=products[s % APPS], quantity=3, actor=actor)
    _log("biggest account built")
    return account
