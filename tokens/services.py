from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from smartaccounts.actors import Actor
from smartaccounts.audit import record_event
from smartaccounts.models import License, Product, SmartAccount
from smartaccounts.secrets import hash_secret, new_secret, secret_matches
from smartaccounts.selectors import can_manage_accounts

from .documents import (
    OFFLINE,
    ONLINE,
    Document,
    build_document,
    content_digest,
    document_content,
    etag_for,
    etag_matches,
    make_content,
    sign_content,
)
from .errors import TokenError
from .models import ActivationToken, Assignment, Server, ServerCredential
from .secrets import new_activation_token, normalize_token, token_checksum_ok
from .selectors import SyncSnapshot, sync_snapshot, unknown_products

MAX_NAME_LENGTH = 100
CREDENTIAL_PREFIX = "srv_"


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


def _require_manager(actor: Actor) -> None:
    if not actor.is_system and not can_manage_accounts(actor):
        raise TokenError("permission_denied", "Your role may not change servers or capacity.")


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise TokenError(
            "validation_error", "name: a server needs a name.", errors={"name": ["Required."]}
        )
    if len(name) > MAX_NAME_LENGTH:
        message = f"At most {MAX_NAME_LENGTH} characters."
        raise TokenError("validation_error", f"name: {message}", errors={"name": [message]})
    return name


def _name_taken(name: str) -> TokenError:
    message = f"A server named “{name}” already exists in this Smart Account: pick another name."
    return TokenError("validation_error", f"name: {message}", errors={"name": [message]})


def _check_name_free(account_id: object, name: str, *, server_id: object = None) -> None:
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
    _require_manager(actor)
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
    _require_manager(actor)
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


def _draw_order(lic: License) -> tuple:
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
    _require_manager(actor)
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
        changed: dict[object, License] = {}
        if delta > 0:
            _draw(server, usable, delta, {a.license_id: a for a in held}, changed, now)
        elif delta < 0:
            _release(held, by_id, -delta, changed, now)
        License.objects.bulk_update(changed.values(), ["assigned"])
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
    held: dict[object, Assignment],
    changed: dict[object, License],
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
    licenses: dict[object, License],
    amount: int,
    changed: dict[object, License],
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
    _require_manager(actor)
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
    _require_manager(actor)
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
        server.save(update_fields=["state", "deactivated_at"])
        record_event(
            actor=actor,
            action="server.deactivated",
            obj=server,
            account=server.account,
            data={"previous_state": previous, "freed": sum(a.quantity for a in held)},
        )
    return server


# --- Activation, sync and offline exchange ---------------------------------------------------


@dataclass(frozen=True)
class Activation:
    server: Server
    credential: str
    document: Document


def server_actor(server: Server, address: str | None) -> Actor:
    return Actor(label=f"server {server.name} ({server.pk})", address=address)


def _find_token(raw: str) -> ActivationToken:
    """The token `raw` names, or TokenError token_invalid (telling a mistyped paste apart)."""
    token = normalize_token(raw)
    if not token_checksum_ok(token):
        raise TokenError(
            "token_invalid",
            "This is not a valid activation token: it looks mistyped or truncated. Copy it again "
            "from the portal.",
            extra={"reason": "checksum"},
        )
    found = (
        ActivationToken.objects.select_related("server__account")
        .filter(token_hash=hash_secret(token))
        .first()
    )
    if found is None or not secret_matches(token, found.token_hash):
        raise TokenError(
            "token_invalid",
            "Unknown activation token. Make a new one on the server's page in the portal.",
            extra={"reason": "unknown"},
        )
    return found


def _consume(token: ActivationToken, now: datetime) -> None:
    """Mark the token used, exactly once even when several requests race for it."""
    consumed = ActivationToken.objects.filter(
        pk=token.pk, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if consumed:
        return
    token.refresh_from_db()
    status = token.status(now)
    if status == "used":
        raise TokenError("token_used", "This activation token was already used.")
    if status == "expired":
        raise TokenError(
            "token_expired",
            "This activation token has expired. Make a new one on the server's page.",
        )
    raise TokenError(
        "token_invalid",
        "This activation token was replaced by a newer one.",
        extra={"reason": "revoked"},
    )


def _check_request(fingerprint: str, hostname: str, version: str) -> None:
    errors = {}
    if not fingerprint or len(fingerprint) > 200:
        errors["fingerprint"] = ["Required, at most 200 characters."]
    if len(hostname) > 255:
        errors["hostname"] = ["At most 255 characters."]
    if len(version) > 64:
        errors["version"] = ["At most 64 characters."]
    if errors:
        field = next(iter(errors))
        raise TokenError("validation_error", f"{field}: {errors[field][0]}", errors=errors)


def activate_server(
    *, token: str, fingerprint: str, hostname: str, version: str, address: str | None = None
) -> Activation:
    """Online activation: consume the token, bind the fingerprint, issue a credential."""
    _check_request(fingerprint, hostname, version)
    now = timezone.now()
    found = _find_token(token)
    with transaction.atomic():
        _consume(found, now)
        server = (
            Server.objects.select_for_update().select_related("account").get(pk=found.server_id)
        )
        if not server.is_pending:
            raise TokenError("token_used", f"This server is already {server.state}.")
        raw_credential = new_secret(CREDENTIAL_PREFIX)
        ServerCredential.objects.create(
            server=server, credential_hash=hash_secret(raw_credential), created_at=now
        )
        server.state = Server.State.ACTIVE
        server.fingerprint = fingerprint
        server.hostname = hostname
        server.reported_version = version
        server.activated_at = now
        server.last_sync_at = now
        server.save(
            update_fields=[
                "state",
                "fingerprint",
                "hostname",
                "reported_version",
                "activated_at",
                "last_sync_at",
            ]
        )
        record_event(
            actor=server_actor(server, address),
            action="server.activated",
            obj=server,
            account=server.account,
            data={"mode": ONLINE, "hostname": hostname, "version": version},
        )
        document = build_document(server, mode=ONLINE, now=now)
    return Activation(server=server, credential=raw_credential, document=document)


@dataclass(frozen=True)
class SyncResult:
    etag: str
    document: Document | None  # None: the server holds the current document already


def sync_server(
    *,
    credential: str,
    fingerprint: str,
    version: str,
    usage: dict[str, int],
    address: str | None = None,
    if_none_match: str | None = None,
) -> SyncResult:
    """Record what the server reports and answer with its current document (or "not
    modified").

    This is the fleet's hot path: one query reads everything; in steady state nothing is
    written (a changed version or usage is stored at once; otherwise last-seen is refreshed
    once SYNC_RECORD_INTERVAL has passed) and nothing is signed when the server's ETag is
    current.
    """
    snapshot = None
    if credential.startswith(CREDENTIAL_PREFIX):
        snapshot = sync_snapshot(hash_secret(credential))
    if snapshot is None or not secret_matches(credential, snapshot.credential_hash):
        raise TokenError("not_authenticated", "Unknown server credential.")
    if snapshot.revoked:
        raise TokenError(
            "credential_revoked",
            "This server was deactivated in the portal; activate it again with a new token.",
        )
    now = timezone.now()
    if fingerprint != snapshot.fingerprint:
        _suspect_clone(snapshot, fingerprint, address, now)
        raise TokenError(
            "fingerprint_mismatch",
            "This credential belongs to another machine. If the server was moved or copied, "
            "activate the new one with a new token.",
        )
    _check_usage(snapshot, usage)
    _record_sync(snapshot, version, usage, address, now)
    content = make_content(snapshot.subject, snapshot.held, mode=ONLINE, now=now)
    etag = etag_for(content, mode=ONLINE, now=now)
    if etag_matches(if_none_match, etag):
        return SyncResult(etag=etag, document=None)
    return SyncResult(etag=etag, document=sign_content(content, mode=ONLINE, now=now))


def _check_usage(snapshot: SyncSnapshot, usage: dict[str, int]) -> None:
    """Usage is reported for catalog products only (so never more entries than the catalog
    holds). What the server holds and what it reported before are known good: the catalog is
    asked only about a changed report naming a product the server holds none of."""
    if usage == snapshot.reported_usage:
        return
    unknown = unknown_products(usage.keys() - {h.product for h in snapshot.held})
    if unknown:
        message = f"Not a product in the catalog: {', '.join(sorted(unknown)[:5])}."
        raise TokenError("validation_error", message, errors={"usage": [message]})


def _record_sync(
    snapshot: SyncSnapshot, version: str, usage: dict[str, int], address: str | None, now: datetime
) -> None:
    changes: dict[str, Any] = {}
    if snapshot.state == Server.State.STALE:
        changes["state"] = Server.State.ACTIVE
    if version != snapshot.reported_version:
        changes["reported_version"] = version
    if usage != snapshot.reported_usage:
        # What a server uses is what over-use is judged by: it reaches the portal at once.
        changes["reported_usage"] = usage
    if snapshot.first_sync_at is None:
        changes["first_sync_at"] = now
    last = snapshot.last_sync_at
    if not changes and last is not None and now - last < settings.SYNC_RECORD_INTERVAL:
        return
    changes["last_sync_at"] = now
    changes["reported_usage"] = usage
    with transaction.atomic():
        Server.objects.filter(pk=snapshot.server_id).update(**changes)
        events = [
            action
            for action, field_name in (
                ("server.first_sync", "first_sync_at"),
                ("server.back_online", "state"),
            )
            if field_name in changes
        ]
        if events:
            server = Server.objects.select_related("account").get(pk=snapshot.server_id)
            for action in events:
                record_event(
                    actor=server_actor(server, address),
                    action=action,
                    obj=server,
                    account=server.account,
                    data={"version": version},
                )


CLONE_AUDIT_INTERVAL = timedelta(hours=1)


def _suspect_clone(
    snapshot: SyncSnapshot, fingerprint: str, address: str | None, now: datetime
) -> None:
    """Flag the server and audit the refused sync (once an hour, not once per attempt)."""
    last = snapshot.clone_suspected_at
    if last is not None and now - last < CLONE_AUDIT_INTERVAL:
        return
    with transaction.atomic():
        Server.objects.filter(pk=snapshot.server_id).update(clone_suspected_at=now)
        server = Server.objects.select_related("account").get(pk=snapshot.server_id)
        record_event(
            actor=server_actor(server, address),
            action="server.fingerprint_mismatch",
            obj=server,
            account=server.account,
            data={"expected": snapshot.fingerprint[:16], "received": fingerprint[:16]},
        )


@dataclass(frozen=True)
class OfflineRequest:
    token: str
    fingerprint: str
    hostname: str
    version: str
    nonce: str


def activate_offline(*, server: Server, request: OfflineRequest, actor: Actor) -> str:
    """Exchange a request file for a signed license file (perpetual capacity only).

    The first exchange consumes the server's token; later exchanges with the same token and
    fingerprint refresh the file (after an expansion, say). The same request with nothing
    changed gets the very same file back.
    """
    _require_manager(actor)
    _check_request(request.fingerprint, request.hostname, request.version)
    if not request.nonce or len(request.nonce) > 200:
        raise TokenError(
            "validation_error", "nonce: required.", errors={"nonce": ["Required, ≤ 200 chars."]}
        )
    now = timezone.now()
    found = _find_token(request.token)
    if found.server_id != server.pk:
        raise TokenError(
            "token_invalid",
            "This request file was made for another server.",
            extra={"reason": "other_server"},
        )
    with transaction.atomic():
        server = Server.objects.select_for_update().select_related("account").get(pk=server.pk)
        subscription_held = Assignment.objects.filter(
            server=server,
            license__state=License.State.ACTIVE,
            license__kind=License.Kind.SUBSCRIPTION,
        ).exists()
        if subscription_held:
            raise TokenError(
                "subscription_requires_online",
                "This server holds subscription capacity, which needs online activation. "
                "Free the subscription capacity or activate the server online.",
            )
        if server.is_pending:
            _consume(found, now)
            server.state = Server.State.OFFLINE
            server.fingerprint = request.fingerprint
            server.hostname = request.hostname
            server.reported_version = request.version
            server.activated_at = now
            first = True
        elif server.state == Server.State.OFFLINE:
            if found.used_at is None:
                raise TokenError("token_invalid", "This token was never used for this server.")
            if request.fingerprint != server.fingerprint:
                raise TokenError(
                    "fingerprint_mismatch", "This server was activated on another machine."
                )
            first = False
        else:
            raise TokenError(
                "server_not_pending",
                f"This server is {server.state}: offline activation is for new or offline servers.",
            )
        content = document_content(server, mode=OFFLINE, now=now, nonce=request.nonce)
        digest = content_digest(content)
        if digest == server.offline_digest and server.offline_document:
            return server.offline_document
        document = build_document(server, mode=OFFLINE, now=now, nonce=request.nonce)
        server.offline_document = document.token
        server.offline_digest = digest
        server.save(
            update_fields=[
                "state",
                "fingerprint",
                "hostname",
                "reported_version",
                "activated_at",
                "offline_document",
                "offline_digest",
            ]
        )
        record_event(
            actor=actor,
            action="server.activated" if first else "server.offline_refreshed",
            obj=server,
            account=server.account,
            data={"mode": OFFLINE, "hostname": request.hostname},
        )
    return document.token


def mark_stale_servers(*, now: datetime, actor: Actor) -> list[Server]:
    """Online servers silent for 3 refresh periods become stale (a later sync revives them)."""
    cutoff = now - 3 * settings.LICENSE_REFRESH_HINT
    candidates = list(
        Server.objects.filter(state=Server.State.ACTIVE, last_sync_at__lt=cutoff).select_related(
            "account"
        )
    )
    marked = []
    for server in candidates:
        with transaction.atomic():
            changed = Server.objects.filter(
                pk=server.pk, state=Server.State.ACTIVE, last_sync_at__lt=cutoff
            ).update(state=Server.State.STALE)
            if changed:
                server.state = Server.State.STALE
                record_event(
                    actor=actor,
                    action="server.stale",
                    obj=server,
                    account=server.account,
                    data={"last_sync_at": server.last_sync_at.isoformat()},
                )
                marked.append(server)
    return marked
