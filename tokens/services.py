"""Servers and their capacity: create, rename, assign and free capacity, mint activation tokens,
deactivate, flag stale servers. What a server itself trades with the service (activation, sync,
the offline exchange) is exchange.py."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from kernel.batches import Raced, in_locked_batches
from smartaccounts.access import access_manage_accounts
from smartaccounts.actors import Actor
from smartaccounts.audit import new_event, record_event, record_events
from smartaccounts.models import AuditEvent, License, Product, SmartAccount
from smartaccounts.secrets import hash_secret

from .errors import TokenError
from .limits import SERVER_NAME_MAX
from .models import ActivationToken, Assignment, Server, ServerCredential
from .secrets import new_activation_token
from .selectors import held_per_product


@dataclass(frozen=True)
class MintedToken:
    """A token as shown once to whoever minted it."""

    raw: str
    expires_at: datetime


@dataclass(frozen=True)
class AssignmentResult:
    server: Server
    product: Product
    quantity: int
    available: int
    token: MintedToken | None = None
    # False when the server already held `quantity`: nothing was written or recorded.
    changed: bool = True


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise TokenError(
            "validation_error", "name: a server needs a name.", errors={"name": ["Required."]}
        )
    if len(name) > SERVER_NAME_MAX:
        message = f"At most {SERVER_NAME_MAX} characters."
        raise TokenError("validation_error", f"name: {message}", errors={"name": [message]})
    return name


def _name_taken(name: str) -> TokenError:
    message = f"A server named “{name}” already exists in this Smart Account: pick another name."
    return TokenError("validation_error", f"name: {message}", errors={"name": [message]})


def _check_name_free(
    account_id: uuid.UUID, name: str, *, server_id: uuid.UUID | None = None
) -> None:
    """Server names are unique per account among servers in use, in any case (the database
    constraint server_name_unique_in_account backs this up)."""
    others = Server.objects.filter(account_id=account_id, name__iexact=name).exclude(
        state=Server.State.DEACTIVATED
    )
    if server_id is not None:
        others = others.exclude(pk=server_id)
    if others.exists():
        raise _name_taken(name)


def create_server(*, account: SmartAccount, name: str, purpose: str, actor: Actor) -> Server:
    access_manage_accounts(actor)
    if purpose not in Server.Purpose.values:
        message = f"One of: {', '.join(Server.Purpose.values)}."
        raise TokenError("validation_error", f"purpose: {message}", errors={"purpose": [message]})
    name = _clean_name(name)
    try:
        with transaction.atomic():
            _check_name_free(account.pk, name)
            server = Server.objects.create(account=account, name=name, purpose=purpose)
            record_event(
                actor=actor,
                action="server.created",
                obj=server,
                account=account,
                data={"name": server.name, "purpose": purpose},
            )
    except IntegrityError as exc:  # a concurrent request took the name after our check
        raise _name_taken(name) from exc
    return server


def rename_server(*, server: Server, name: str, actor: Actor) -> Server:
    access_manage_accounts(actor)
    name = _clean_name(name)
    try:
        with transaction.atomic():
            _check_name_free(server.account_id, name, server_id=server.pk)
            previous = server.name
            Server.objects.filter(pk=server.pk).update(name=name)
            server.name = name
            record_event(
                actor=actor,
                action="server.renamed",
                obj=server,
                account=server.account,
                data={"from": previous, "to": name},
            )
    except IntegrityError as exc:
        raise _name_taken(name) from exc
    return server


def _draw_order(lic: License) -> tuple[bool, float, datetime]:
    """Which license a new assignment draws on first: perpetual before subscription, then the
    latest care end (a server keeps care longest), then the oldest."""
    care = lic.care_ends_at.timestamp() if lic.care_ends_at else float("-inf")
    return (lic.kind != License.Kind.PERPETUAL, -care, lic.created_at)


def assign_capacity(
    *, server: Server, product: Product, quantity: int, actor: Actor
) -> AssignmentResult:
    """Make `server` hold exactly `quantity` of `product` (0 frees it).

    The account's license rows for the product are locked for the whole transaction, so
    concurrent assignments see each other's effect: the sum of assignments never exceeds the
    active capacity (and the database's CHECK on License.assigned backs this up).
    """
    access_manage_accounts(actor)
    if quantity < 0:
        raise TokenError(
            "validation_error", "quantity: must be 0 or more.", errors={"quantity": ["≥ 0"]}
        )
    now = timezone.now()
    with transaction.atomic():
        server = Server.objects.select_for_update().select_related("account").get(pk=server.pk)
        if server.is_deactivated:
            raise TokenError("validation_error", "This server is deactivated.")
        licenses = list(
            License.objects.select_for_update()
            .filter(account_id=server.account_id, product=product)
            .order_by("pk")  # one lock order for everyone: no deadlocks
        )
        by_id = {lic.pk: lic for lic in licenses}
        # Only active licenses count: capacity held on an expired one waits for its renewal.
        held = [
            a
            for a in Assignment.objects.filter(server=server, license_id__in=by_id)
            if by_id[a.license_id].state == License.State.ACTIVE
        ]
        current = sum(a.quantity for a in held)
        usable = sorted(
            (
                lic
                for lic in licenses
                if lic.state == License.State.ACTIVE
                # An offline server's license file carries perpetual capacity only.
                and (server.state != Server.State.OFFLINE or lic.kind == License.Kind.PERPETUAL)
            ),
            key=_draw_order,
        )
        available = sum(lic.quantity - lic.assigned for lic in usable)
        delta = quantity - current
        if delta > available:
            detail = (
                f"Only {available} more {product.unit} of {product.name} are available; "
                f"this server holds {current}."
            )
            if server.state == Server.State.OFFLINE and any(
                lic.kind == License.Kind.SUBSCRIPTION
                and lic.state == License.State.ACTIVE
                and lic.quantity > lic.assigned
                for lic in licenses
            ):
                detail = (
                    f"Only {available} more {product.unit} of {product.name} are available to "
                    f"this server: it was activated offline, and a license file carries "
                    f"perpetual capacity only. Subscription capacity needs a server activated "
                    f"online. This server holds {current}."
                )
            raise TokenError(
                "insufficient_capacity",
                detail,
                extra={"available": available, "held": current},
            )
        if delta == 0:
            # Saving what the server already holds is no change: no write and no event (a
            # pending server without a usable token still gets one, as the contract says).
            token = None
            if server.is_pending and quantity > 0 and not _has_usable_token(server, now):
                token = _mint(server, actor, now)
            return AssignmentResult(
                server=server,
                product=product,
                quantity=quantity,
                available=available,
                token=token,
                changed=False,
            )
        changed: dict[uuid.UUID, License] = {}
        if delta > 0:
            _draw(server, usable, delta, {a.license_id: a for a in held}, changed, now)
        elif delta < 0:
            _release(held, by_id, -delta, changed, now)
        License.objects.bulk_update(changed.values(), ["assigned"])
        refresh_over_use([server.pk])
        token = None
        if server.is_pending and quantity > 0 and not _has_usable_token(server, now):
            token = _mint(server, actor, now)
        record_event(
            actor=actor,
            action="capacity.assigned",
            obj=server,
            account=server.account,
            data={"product": product.code, "from": current, "to": quantity},
        )
    return AssignmentResult(
        server=server,
        product=product,
        quantity=quantity,
        available=available - delta,
        token=token,
    )


def _draw(
    server: Server,
    usable: list[License],
    amount: int,
    held: dict[uuid.UUID, Assignment],
    changed: dict[uuid.UUID, License],
    now: datetime,
) -> None:
    for lic in usable:
        if amount == 0:
            break
        take = min(lic.quantity - lic.assigned, amount)
        if take <= 0:
            continue
        lic.assigned += take
        changed[lic.pk] = lic
        amount -= take
        if lic.pk in held:
            Assignment.objects.filter(pk=held[lic.pk].pk).update(
                quantity=F("quantity") + take, updated_at=now
            )
        else:
            Assignment.objects.create(server=server, license=lic, quantity=take, updated_at=now)


def _release(
    held: list[Assignment],
    licenses: dict[uuid.UUID, License],
    amount: int,
    changed: dict[uuid.UUID, License],
    now: datetime,
) -> None:
    # Give back in the reverse of the draw order: subscriptions before perpetual, the earliest
    # care end first.
    def lic(assignment: Assignment) -> License:
        return licenses[assignment.license_id]

    for assignment in sorted(held, key=lambda a: _draw_order(lic(a)), reverse=True):
        if amount == 0:
            break
        held_license = lic(assignment)
        give = min(assignment.quantity, amount)
        held_license.assigned -= give
        changed[held_license.pk] = held_license
        amount -= give
        if give == assignment.quantity:
            assignment.delete()
        else:
            Assignment.objects.filter(pk=assignment.pk).update(
                quantity=F("quantity") - give, updated_at=now
            )


def refresh_over_use(server_ids: Collection[uuid.UUID]) -> None:
    """Set the servers' over-use flag from what they report and hold now (after a change of
    what they hold; a sync keeps it for a change of what they report)."""
    if not server_ids:
        return
    refresh_over_use_of(
        list(Server.objects.filter(pk__in=server_ids).only("state", "reported_usage"))
    )


def refresh_over_use_of(servers: list[Server]) -> None:
    """refresh_over_use for servers already read (with their state and report as stored)."""
    if not servers:
        return
    server_ids = [server.pk for server in servers]
    held = held_per_product(server_ids)
    over = [server.pk for server in servers if server.over_use(held.get(server.pk, {}))]
    Server.objects.filter(pk__in=server_ids, overused=True).exclude(pk__in=over).update(
        overused=False
    )
    Server.objects.filter(pk__in=over, overused=False).update(overused=True)


def refresh_over_use_of_licenses(license_ids: Collection[uuid.UUID]) -> None:
    """Refresh the over-use flag of every server holding capacity of these licenses (after
    they expired, say): what a server holds on active licenses may have fallen below what it
    reports. A few queries, whatever the number of licenses and servers."""
    refresh_over_use(
        list(
            Assignment.objects.filter(license__in=list(license_ids))
            .values_list("server_id", flat=True)
            .distinct()
        )
    )


def _has_usable_token(server: Server, now: datetime) -> bool:
    return ActivationToken.objects.filter(
        server=server, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).exists()


def _mint(server: Server, actor: Actor, now: datetime) -> MintedToken:
    revoked = ActivationToken.objects.filter(
        server=server, used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    raw = new_activation_token()
    token = ActivationToken.objects.create(
        server=server,
        token_hash=hash_secret(raw),
        created_at=now,
        expires_at=now + settings.ACTIVATION_TOKEN_TTL,
        created_by=actor.label[:200],
    )
    record_event(
        actor=actor,
        action="token.regenerated" if revoked else "token.minted",
        obj=server,
        account=server.account,
        data={"token_id": str(token.pk), "expires_at": token.expires_at.isoformat()},
    )
    return MintedToken(raw=raw, expires_at=token.expires_at)


def mint_token(*, server: Server, actor: Actor) -> MintedToken:
    """A new activation token for a pending server; any earlier one stops working."""
    access_manage_accounts(actor)
    with transaction.atomic():
        server = Server.objects.select_for_update().select_related("account").get(pk=server.pk)
        if not server.is_pending:
            raise TokenError(
                "server_not_pending",
                f"This server is {server.state}: tokens are only for servers not yet activated.",
            )
        return _mint(server, actor, timezone.now())


def deactivate_server(*, server: Server, actor: Actor) -> Server:
    """Free the server's capacity, revoke its credential and tokens. Harmless twice."""
    access_manage_accounts(actor)
    now = timezone.now()
    with transaction.atomic():
        server = Server.objects.select_for_update().select_related("account").get(pk=server.pk)
        if server.is_deactivated:
            return server
        held = list(Assignment.objects.filter(server=server))
        licenses = {
            lic.pk: lic
            for lic in License.objects.select_for_update()
            .filter(pk__in=[a.license_id for a in held])
            .order_by("pk")
        }
        for assignment in held:
            licenses[assignment.license_id].assigned -= assignment.quantity
        License.objects.bulk_update(licenses.values(), ["assigned"])
        Assignment.objects.filter(server=server).delete()
        ActivationToken.objects.filter(
            server=server, used_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        ServerCredential.objects.filter(server=server, revoked_at__isnull=True).update(
            revoked_at=now
        )
        previous = server.state
        server.state = Server.State.DEACTIVATED
        server.deactivated_at = now
        server.overused = False  # a deactivated server's report no longer counts
        server.save(update_fields=["state", "deactivated_at", "overused"])
        record_event(
            actor=actor,
            action="server.deactivated",
            obj=server,
            account=server.account,
            data={"previous_state": previous, "freed": sum(a.quantity for a in held)},
        )
    return server


STALE_AFTER_REFRESH_PERIODS = 3


def stale_after() -> timedelta:
    """How long an online server may stay silent before it is stale. A steady sync records
    last_sync_at only every SYNC_RECORD_INTERVAL, so this must exceed that interval by a
    refresh period at least (tokens.checks enforces it at start-up)."""
    return STALE_AFTER_REFRESH_PERIODS * settings.LICENSE_REFRESH_HINT


def mark_stale_servers(*, now: datetime, actor: Actor) -> int:
    """Online servers silent for 3 refresh periods become stale (a later sync revives them):
    `DAILY_JOBS_BATCH_SIZE` servers per transaction, one conditional UPDATE and one insert of
    their events each, and their over-use flag refreshed. Returns how many went stale."""
    cutoff = now - stale_after()

    def silent(queryset: QuerySet[Server]) -> QuerySet[Server]:
        return queryset.filter(state=Server.State.ACTIVE, last_sync_at__lt=cutoff)

    def mark(batch: list[Server]) -> int:
        try:
            with transaction.atomic():
                changed = silent(Server.objects.filter(pk__in=[s.pk for s in batch])).update(
                    state=Server.State.STALE
                )
                if changed != len(batch):
                    raise Raced
                record_events([_stale_event(server, actor) for server in batch])
            for server in batch:  # as the UPDATE left them: no need to read them again
                server.state = Server.State.STALE
            raced = False
        except Raced:
            changed = sum(_mark_stale(server, cutoff, actor) for server in batch)
            raced = True
        # The servers it touched: their over-use flag as their holdings say today, so the
        # account's Overview and the partner's dashboard and digest agree. One reporting no
        # use and not flagged is right as it is: not read again.
        touched = [s for s in batch if s.overused or s.reported_usage]
        if raced:  # another writer changed some: read what they are now
            refresh_over_use([s.pk for s in touched])
        else:
            refresh_over_use_of(touched)
        return changed

    candidates = silent(Server.objects.all()).only(
        "pk", "account_id", "last_sync_at", "overused", "reported_usage"
    )
    return in_locked_batches(candidates, settings.DAILY_JOBS_BATCH_SIZE, mark)


def _stale_event(server: Server, actor: Actor) -> AuditEvent:
    return new_event(
        actor=actor,
        action="server.stale",
        obj=server,
        account_id=server.account_id,
        # Only servers that synced before the cutoff go stale: last_sync_at is set.
        data={"last_sync_at": server.last_sync_at.isoformat() if server.last_sync_at else None},
    )


def _mark_stale(server: Server, cutoff: datetime, actor: Actor) -> bool:
    with transaction.atomic():
        changed = Server.objects.filter(
            pk=server.pk, state=Server.State.ACTIVE, last_sync_at__lt=cutoff
        ).update(state=Server.State.STALE)
        if changed:
            record_events([_stale_event(server, actor)])
    return bool(changed)
