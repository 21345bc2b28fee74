"""The device exchange: what an AppSuite server trades with the service. Online activation
(a token for a credential and a license document), sync (the fleet's hot path), and the offline
exchange (a request file for a signed license file). Servers and their capacity are managed in
services.py."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from smartaccounts.access import access_manage_accounts
from smartaccounts.actors import Actor
from smartaccounts.audit import record_event
from smartaccounts.models import License
from smartaccounts.secrets import digests_match, hash_secret, new_secret, secret_matches

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
from .limits import FINGERPRINT_MAX, HOSTNAME_MAX, NONCE_MAX, VERSION_MAX
from .models import ActivationToken, Assignment, Server, ServerCredential, UsageDay, over_use
from .secrets import normalize_token, token_checksum_ok
from .selectors import SyncSnapshot, sync_snapshot, unknown_products

CREDENTIAL_PREFIX = "srv_"


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
    raise TokenError("token_invalid", _revoked_detail(token), extra={"reason": "revoked"})


def _revoked_detail(token: ActivationToken) -> str:
    """Why a revoked token no longer works: its server was deactivated (which revokes every
    token it had), or a newer token replaced it."""
    server = Server.objects.only("state", "deactivated_at").get(pk=token.server_id)
    if server.is_deactivated:
        when = server.deactivated_at or token.revoked_at
        on = f" on {when:%Y-%m-%d %H:%M} UTC" if when else ""
        return (
            f"This server was deactivated in the portal{on}, so its activation token no longer "
            "works. To license this machine again, add a new server in the portal and activate "
            "with its token."
        )
    return (
        "This activation token was replaced by a newer one. Use the newest token from the "
        "server's page in the portal."
    )


def _check_request(fingerprint: str, hostname: str, version: str) -> None:
    errors = {}
    if not fingerprint or len(fingerprint) > FINGERPRINT_MAX:
        errors["fingerprint"] = [f"Required, at most {FINGERPRINT_MAX} characters."]
    if len(hostname) > HOSTNAME_MAX:
        errors["hostname"] = [f"At most {HOSTNAME_MAX} characters."]
    if len(version) > VERSION_MAX:
        errors["version"] = [f"At most {VERSION_MAX} characters."]
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
        # Every activation with this token, first or repeated, holds the token's row until it
        # commits: two requests racing never both see it unused, nor both repeat it.
        found = ActivationToken.objects.select_for_update().get(pk=found.pk)
        if found.used_at is not None:
            return _repeat_activation(
                found,
                fingerprint=fingerprint,
                hostname=hostname,
                version=version,
                address=address,
                now=now,
            )
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


def _repeat_activation(
    token: ActivationToken,
    *,
    fingerprint: str,
    hostname: str,
    version: str,
    address: str | None,
    now: datetime,
) -> Activation:
    """A used token presented again: the machine that used it retrying an activation whose
    answer it never received. Within ACTIVATION_RETRY_MINUTES of that activation, from the same
    fingerprint, and while the server has not synced with the credential it was given, the
    same server is activated again with a fresh credential (only its hash was kept, so the
    first one cannot be handed out twice; it is revoked). Anything else is token_used.

    Call with the token's row locked."""
    used = TokenError("token_used", "This activation token was already used.")
    server = Server.objects.select_for_update().select_related("account").get(pk=token.server_id)
    assert token.used_at is not None  # the caller checked
    if (
        server.state != Server.State.ACTIVE
        or server.activated_at != token.used_at  # activated since by another token
        or server.first_sync_at is not None
        or now - token.used_at > timedelta(minutes=settings.ACTIVATION_RETRY_MINUTES)
        or fingerprint != server.fingerprint
    ):
        raise used
    ServerCredential.objects.filter(server=server, revoked_at__isnull=True).update(revoked_at=now)
    raw_credential = new_secret(CREDENTIAL_PREFIX)
    ServerCredential.objects.create(
        server=server, credential_hash=hash_secret(raw_credential), created_at=now
    )
    server.hostname = hostname
    server.reported_version = version
    server.save(update_fields=["hostname", "reported_version"])
    record_event(
        actor=server_actor(server, address),
        action="server.activation_repeated",
        obj=server,
        account=server.account,
        data={"hostname": hostname, "version": version},
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
    snapshot, digest = None, ""
    if credential.startswith(CREDENTIAL_PREFIX):
        digest = hash_secret(credential)
        snapshot = sync_snapshot(digest)
    if snapshot is None or not digests_match(digest, snapshot.credential_hash):
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
    """Write what changed, and only that. A steady sync writes nothing; last-seen is refreshed
    once SYNC_RECORD_INTERVAL has passed; a usage report is recorded at once when it is
    material (`_material_usage`), otherwise with the next refresh. A usage-only write touches
    no indexed column, so PostgreSQL updates the row in place (a HOT update)."""
    changes: dict[str, Any] = {}
    if snapshot.state == Server.State.STALE:
        changes["state"] = Server.State.ACTIVE
    if version != snapshot.reported_version:
        changes["reported_version"] = version
    held: dict[str, int] = {}
    for h in snapshot.held:
        held[h.product] = held.get(h.product, 0) + h.quantity
    overused = bool(over_use(snapshot.state, usage, held))
    if overused != snapshot.overused:  # a new report, or capacity changed since the last
        changes["overused"] = overused
    if snapshot.first_sync_at is None:
        changes["first_sync_at"] = now
    last = snapshot.last_sync_at
    due = last is None or now - last >= settings.SYNC_RECORD_INTERVAL
    if usage != snapshot.reported_usage and (
        due or changes or _material_usage(snapshot.reported_usage, usage)
    ):
        changes["reported_usage"] = usage
    if not changes and not due:
        return
    if due or set(changes) - {"reported_usage"}:
        changes["last_sync_at"] = now
    with transaction.atomic():
        Server.objects.filter(pk=snapshot.server_id).update(**changes)
        if "reported_usage" in changes:
            _record_usage_day(snapshot.server_id, usage, now)
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


def _material_usage(recorded: dict[str, Any], reported: dict[str, int]) -> bool:
    """Whether a report differs enough from the recorded one to be written at once: another set
    of applications, or a count moved by more than USAGE_MATERIAL_PERCENT of the recorded one
    and by more than 1. (A change of the over-use verdict is written at once by the caller.)"""
    if recorded.keys() != reported.keys():
        return True
    share = settings.USAGE_MATERIAL_PERCENT
    for code, used in reported.items():
        before = recorded[code]
        if not isinstance(before, int):
            return True
        moved = abs(used - before)
        if moved > 1 and moved * 100 > before * share:
            return True
    return False


def _record_usage_day(server_id: Any, usage: dict[str, int], now: datetime) -> None:
    """Raise today's peaks of the server's recorded use (one read, one write)."""
    day = now.date()
    row = UsageDay.objects.filter(server_id=server_id, day=day).values_list("peaks", flat=True)
    peaks = dict(row.first() or {})
    for code, used in usage.items():
        peaks[code] = max(used, peaks.get(code, 0))
    UsageDay.objects.bulk_create(
        [UsageDay(server_id=server_id, day=day, peaks=peaks)],
        update_conflicts=True,
        unique_fields=["server", "day"],
        update_fields=["peaks"],
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
    access_manage_accounts(actor)
    _check_request(request.fingerprint, request.hostname, request.version)
    if not request.nonce or len(request.nonce) > NONCE_MAX:
        raise TokenError(
            "validation_error",
            "nonce: required.",
            errors={"nonce": [f"Required, ≤ {NONCE_MAX} chars."]},
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
