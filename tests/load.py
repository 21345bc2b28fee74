"""A large Smart Account built in bulk, for the tests that bound the number of queries a page
or an API list needs: the same count on a large account and a small one proves the bound."""

from datetime import timedelta

from django.utils import timezone

from smartaccounts.models import License, Product, SmartAccount
from smartaccounts.secrets import hash_secret
from tokens.models import ActivationToken, Assignment, Server

# Large in every dimension the pages loop over (more than a page of applications and of
# servers, several licenses per application), yet quick to build: a count that does not
# change between this and a handful of rows does not change at any size.
LARGE = {"products": 50, "licenses_per_product": 5, "servers": 30}


def build_load(
    account: SmartAccount, *, tag: str, products: int, licenses_per_product: int, servers: int
) -> list[Server]:
    """Fill `account` with rows made in bulk: per product, 8 in 10 licenses active (others
    locked or expired), half perpetual; servers in every state but deactivated, each holding
    3 units on two active licenses, License.assigned kept equal to the Assignment rows."""
    now = timezone.now()
    Product.objects.bulk_create(
        Product(code=f"{tag}_{n:03d}", name=f"{tag} application {n:03d}", unit="users")
        for n in range(products)
    )
    catalog = list(Product.objects.filter(code__startswith=f"{tag}_").order_by("code"))
    licenses = []
    for product in catalog:
        for n in range(licenses_per_product):
            perpetual = n % 2 == 0
            licenses.append(
                License(
                    account=account,
                    product=product,
                    kind=License.Kind.PERPETUAL if perpetual else License.Kind.SUBSCRIPTION,
                    quantity=10,
                    state=(
                        License.State.ACTIVE
                        if n % 10 < 8
                        else License.State.LOCKED
                        if n % 10 == 8
                        else License.State.EXPIRED
                    ),
                    ends_at=None if perpetual else now + timedelta(days=365),
                    care_ends_at=now + timedelta(days=20 + 7 * n),
                    source=f"{tag}-PO-{n}",
                )
            )
    License.objects.bulk_create(licenses, batch_size=500)
    active = [lic for lic in licenses if lic.state == License.State.ACTIVE]
    states = [Server.State.PENDING, Server.State.ACTIVE, Server.State.OFFLINE, Server.State.STALE]
    fleet = [
        Server(
            account=account,
            name=f"{tag}-server-{n:04d}",
            state=states[n % len(states)],
            reported_version="12.1",
            reported_usage={catalog[n % len(catalog)].code: 2},
            last_sync_at=now,
        )
        for n in range(servers)
    ]
    Server.objects.bulk_create(fleet, batch_size=500)
    assignments = []
    for n, server in enumerate(fleet):
        for lic in (active[(2 * n) % len(active)], active[(2 * n + 1) % len(active)]):
            lic.assigned += 3
            assignments.append(Assignment(server=server, license=lic, quantity=3))
    Assignment.objects.bulk_create(assignments, batch_size=500)
    License.objects.bulk_update(active, ["assigned"], batch_size=500)
    ActivationToken.objects.bulk_create(
        ActivationToken(
            server=server,
            token_hash=hash_secret(f"{tag}-{server.pk}"),
            expires_at=now + timedelta(days=30),
        )
        for server in fleet
        if server.is_pending
    )
    return fleet
