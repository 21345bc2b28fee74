"""Verification of license documents against pinned Ed25519 keys."""

import time
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "EdDSA"
DOCUMENT_TYPE = "license+jwt"
ROLLBACK_TOLERANCE = 3600.0  # seconds the clock may go back before we call it a rollback


class Refused(Exception):
    """The document must not be used."""


class UnknownKey(Refused):
    def __init__(self, kid: str) -> None:
        super().__init__(f"signed with an unknown key {kid!r}")
        self.kid = kid


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]
    kid: str


def verify(
    document: str,
    keys: dict[str, dict[str, Any]],
    *,
    fingerprint: str,
    server_id: str | None,
) -> Verified:
    """Check signature, algorithm, type, key id, subject and fingerprint (not the lease)."""
    try:
        header = jwt.get_unverified_header(document)
    except jwt.PyJWTError as exc:
        raise Refused(f"not a license document ({exc})") from exc
    if header.get("alg") != ALGORITHM:
        raise Refused(f"algorithm {header.get('alg')!r} is not accepted")
    if header.get("typ") != DOCUMENT_TYPE:
        raise Refused(f"type {header.get('typ')!r} is not a license document")
    kid = header.get("kid", "")
    if kid not in keys:
        raise UnknownKey(kid)
    try:
        key = jwt.PyJWK(keys[kid], algorithm=ALGORITHM)
        claims = jwt.decode(
            document,
            key.key,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "require": ["iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Refused(f"signature or claims invalid ({exc})") from exc
    if server_id and claims["sub"] != server_id:
        raise Refused("the document is for another server")
    if claims.get("fingerprint") != fingerprint:
        raise Refused("the document is bound to another machine")
    return Verified(claims=claims, kid=kid)


def clock_rolled_back(last_verified_at: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return last_verified_at > 0 and now < last_verified_at - ROLLBACK_TOLERANCE


def lease_left(claims: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds until the lease ends; None when the document has no lease (offline)."""
    if "exp" not in claims:
        return None
    now = time.time() if now is None else now
    return claims["exp"] - now
