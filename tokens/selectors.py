from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from licensing_portal.identifiers import uuid_or_404
from smartaccounts.actors import Actor
from smartaccounts.models import CARE_EXPIRING_WITHIN, License, Product, SmartAccount
from smartaccounts.selectors import PoolRow, accounts_for, license_pool

from .models import ActivationToken, Assignment, Server


def accounts_overview_for(actor: Actor, now: datetime, search: str = "") -> QuerySet[SmartAccount]:
    """The customer picker: each account with its counts, in one query."""
    accounts = accounts_for(actor).select_related("organization")
    if search:
        accounts = accounts.filter(name__icontains=search)
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
    ).order_by("name")


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


def servers_of(account: SmartAccount, *, include_deactivated: bool = True) -> QuerySet[Server]:
    """An account's servers with what each holds, per product."""
    servers = Server.objects.filter(account=account).select_related("account")
    if not include_deactivated:
        servers = servers.exclude(state=Server.State.DEACTIVATED)
    return with_holdings(servers)


@dataclass
class Holding:
    """What a server holds of one application, next to what the account has left."""

    product: Product
    held: int
    used: int | None
    pool: PoolRow

    @property
    def available(self) -> int:
        return self.pool.available

    @property
    def can_hold_up_to(self) -> int:
        return self.held + self.pool.available


def holdings(server: Server, now: datetime) -> list[Holding]:
    """One line per application of the account: this server's share and what is available."""
    held = dict(
        Assignment.objects.filter(server=server, license__state=License.State.ACTIVE)
        .values("license__product")
        .annotate(n=Sum("quantity"))
        .values_list("license__product", "n")
    )
    usage = server.reported_usage or {}
    return [
        Holding(
            product=row.product,
            held=held.get(row.product.pk, 0),
            used=usage.get(row.product.code),
            pool=row,
        )
        for row in license_pool(server.account, now)
        if row.total or held.get(row.product.pk)
    ]


def held_by_product(server: Server) -> dict[str, int]:
    """{product code: quantity} the server holds on active licenses."""
    return dict(
        Assignment.objects.filter(server=server, license__state=License.State.ACTIVE)
        .values("license__product__code")
        .annotate(n=Sum("quantity"))
        .values_list("license__product__code", "n")
    )


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
