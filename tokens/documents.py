"""What a server's license document says: its entitlements, lease and services."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from smartaccounts.models import License, care_status_at

from .models import Assignment, Server
from .signing import sign_document

ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True)
class Document:
    token: str
    etag: str
    claims: dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def entitlements(server: Server, now: datetime) -> list[dict[str, Any]]:
    """One entry per assignment on a license that is active now (one query)."""
    assignments = (
        Assignment.objects.filter(server=server, license__state=License.State.ACTIVE)
        .select_related("license__product")
        .order_by("license__product__code", "license__created_at")
    )
    items = []
    for assignment in assignments:
        lic = assignment.license
        if lic.ends_at is not None and lic.ends_at <= now:
            continue  # the expiry job may not have run yet: a lapsed term is out all the same
        items.append(
            {
                "product": lic.product.code,
                "name": lic.product.name,
                "unit": lic.product.unit,
                "quantity": assignment.quantity,
                "kind": lic.kind,
                "license": str(lic.pk),
                "ends_at": _iso(lic.ends_at),
                "care_ends_at": _iso(lic.care_ends_at),
                "care_status": care_status_at(lic.care_ends_at, now),
            }
        )
    return items


def _services(mode: str, items: list[dict[str, Any]]) -> list[str]:
    cared = any(item["care_status"] != License.CareStatus.EXPIRED for item in items)
    return list(settings.CLOUD_SERVICES) if mode == ONLINE and cared else []


def content_digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def document_content(
    server: Server, *, mode: str, now: datetime, nonce: str | None = None
) -> dict[str, Any]:
    """The claims that say what the server may run, without the times."""
    items = entitlements(server, now)
    content: dict[str, Any] = {
        "iss": settings.LICENSE_ISSUER,
        "sub": str(server.pk),
        "fingerprint": server.fingerprint,
        "mode": mode,
        "account": {"id": str(server.account_id), "name": server.account.name},
        "entitlements": items,
        "services": _services(mode, items),
    }
    if nonce is not None:
        content["nonce"] = nonce
    return content


def build_document(
    server: Server, *, mode: str, now: datetime, nonce: str | None = None
) -> Document:
    """Sign the server's current document.

    The ETag is a digest of what the document grants plus the refresh period it belongs to,
    not of its signing time: a server re-syncing within one period with nothing changed gets
    304, and a fresh lease at least once per period. Offline files carry no lease.
    """
    content = document_content(server, mode=mode, now=now, nonce=nonce)
    claims = {**content, "iat": int(now.timestamp())}
    period = None
    if mode == ONLINE:
        hint = settings.LICENSE_REFRESH_HINT.total_seconds()
        period = int(now.timestamp() // hint)
        claims["exp"] = int(now.timestamp() + settings.LICENSE_LEASE.total_seconds())
        claims["refresh_after"] = int(now.timestamp() + hint)
    digest = content_digest({"content": content, "period": period})
    return Document(token=sign_document(claims), etag=f'"{digest[:32]}"', claims=claims)
