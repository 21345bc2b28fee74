"""What a server's license document says: its entitlements, lease and services."""

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.http import parse_etags

from smartaccounts.models import License, care_status_at

from .models import Assignment, Server
from .signing import sign_document

ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True)
class Held:
    """Capacity a server holds on one active license."""

    product: str
    name: str
    unit: str
    quantity: int
    kind: str
    license_id: str
    ends_at: datetime | None
    care_ends_at: datetime | None


@dataclass(frozen=True)
class Subject:
    """Who the document is for."""

    server_id: str
    fingerprint: str
    account_id: str
    account_name: str


@dataclass(frozen=True)
class Document:
    token: str
    etag: str
    claims: dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def held_by(server: Server) -> list[Held]:
    """What the server holds on active licenses (one query)."""
    return held_from(
        Assignment.objects.filter(server=server, license__state=License.State.ACTIVE)
        .select_related("license__product")
        .order_by("license__product__code", "license__created_at")
    )


def held_from(assignments: Iterable[Assignment]) -> list[Held]:
    """Held lines from assignments on active licenses, their license and product at hand."""
    return [
        Held(
            product=a.license.product.code,
            name=a.license.product.name,
            unit=a.license.product.unit,
            quantity=a.quantity,
            kind=a.license.kind,
            license_id=str(a.license_id),
            ends_at=a.license.ends_at,
            care_ends_at=a.license.care_ends_at,
        )
        for a in assignments
    ]


def entitlements(held: list[Held], now: datetime) -> list[dict[str, Any]]:
    items = []
    for h in held:
        if h.ends_at is not None and h.ends_at <= now:
            continue  # the expiry job may not have run yet: a lapsed term is out all the same
        items.append(
            {
                "product": h.product,
                "name": h.name,
                "unit": h.unit,
                "quantity": h.quantity,
                "kind": h.kind,
                "license": h.license_id,
                "ends_at": _iso(h.ends_at),
                "care_ends_at": _iso(h.care_ends_at),
                "care_status": care_status_at(h.care_ends_at, now),
            }
        )
    return items


def _services(mode: str, items: list[dict[str, Any]]) -> list[str]:
    cared = any(item["care_status"] != License.CareStatus.EXPIRED for item in items)
    return list(settings.CLOUD_SERVICES) if mode == ONLINE and cared else []


def content_digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def subject_of(server: Server) -> Subject:
    return Subject(
        server_id=str(server.pk),
        fingerprint=server.fingerprint,
        account_id=str(server.account_id),
        account_name=server.account.name,
    )


def make_content(
    subject: Subject, held: list[Held], *, mode: str, now: datetime, nonce: str | None = None
) -> dict[str, Any]:
    """The claims that say what the server may run, without the times."""
    items = entitlements(held, now)
    content: dict[str, Any] = {
        "iss": settings.LICENSE_ISSUER,
        "sub": subject.server_id,
        "fingerprint": subject.fingerprint,
        "mode": mode,
        "account": {"id": subject.account_id, "name": subject.account_name},
        "entitlements": items,
        "services": _services(mode, items),
    }
    if nonce is not None:
        content["nonce"] = nonce
    return content


def document_content(
    server: Server, *, mode: str, now: datetime, nonce: str | None = None
) -> dict[str, Any]:
    return make_content(subject_of(server), held_by(server), mode=mode, now=now, nonce=nonce)


def etag_for(content: dict[str, Any], *, mode: str, now: datetime) -> str:
    """A digest of what the document grants plus the refresh period it belongs to — not of
    its signing time: a server re-syncing within one period with nothing changed gets 304,
    and a fresh lease at least once per period.

    The tag is weak (RFC 9110 8.8.1): two answers in one period carry the same tag but
    differently signed bytes (`iat`, `exp`), equivalent in meaning, not byte for byte."""
    period = None
    if mode == ONLINE:
        period = int(now.timestamp() // settings.LICENSE_REFRESH_HINT.total_seconds())
    return f'W/"{content_digest({"content": content, "period": period})[:32]}"'


def _opaque_tag(etag: str) -> str:
    return etag.removeprefix("W/")


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match field value (RFC 9110 13.1.2) holds `etag`: `*`, or a list of
    tags compared weakly (the opaque tags equal, `W/` on either side ignored), so a tag a proxy
    weakened, or a strong tag an older agent kept, still matches. A malformed member is
    skipped, never an error."""
    if not if_none_match:
        return False
    if if_none_match == etag:  # what the agent sends back: the tag it was given
        return True
    tags = parse_etags(if_none_match)
    return "*" in tags or _opaque_tag(etag) in {_opaque_tag(tag) for tag in tags}


def sign_content(content: dict[str, Any], *, mode: str, now: datetime) -> Document:
    """Sign a document. Online documents carry a lease and a refresh hint; offline files
    carry neither."""
    claims = {**content, "iat": int(now.timestamp())}
    if mode == ONLINE:
        claims["exp"] = int(now.timestamp() + settings.LICENSE_LEASE.total_seconds())
        claims["refresh_after"] = int(
            now.timestamp() + settings.LICENSE_REFRESH_HINT.total_seconds()
        )
    return Document(
        token=sign_document(claims), etag=etag_for(content, mode=mode, now=now), claims=claims
    )


def build_document(
    server: Server, *, mode: str, now: datetime, nonce: str | None = None
) -> Document:
    return sign_content(
        document_content(server, mode=mode, now=now, nonce=nonce), mode=mode, now=now
    )


def issued_claims(token: str) -> dict[str, Any]:
    """The claims of a document this service signed and stored itself (an offline file), read
    without verifying: it never came from outside. {} when it is not a compact JWS."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def entitlement_key(item: dict[str, Any]) -> tuple[Any, ...]:
    """What an entitlement grants, without the care status (which moves with the clock)."""
    return (
        item.get("product"),
        item.get("quantity"),
        item.get("kind"),
        item.get("license"),
        item.get("ends_at"),
        item.get("care_ends_at"),
    )
