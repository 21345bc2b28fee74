"""Verification of license documents against signing keys the vendor's root endorses."""

import time
from dataclasses import dataclass
from typing import Any

import jwt

from .trust import Root, endorsed

ALGORITHM = "EdDSA"
DOCUMENT_TYPE = "license+jwt"
ROLLBACK_TOLERANCE = 3600.0  # seconds the clock may go back before we call it a rollback
MAX_CLOCK_SKEW = 300.0  # seconds this machine's clock may differ from the service's


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
    root: Root,
    fingerprint: str,
    server_id: str | None,
    now: float | None = None,
    held: bool = False,
) -> Verified:
    """Check the key's endorsement by the root, then signature, algorithm, type, key id,
    issue time, subject and fingerprint (not the lease). A new document issued in the future
    beyond the allowed skew is refused; a `held` one was checked when it came, and a clock
    set back since is the rollback check's business."""
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
    trusted = endorsed({kid: keys[kid]}, root)
    if kid not in trusted:
        raise Refused(f"the signing key {kid!r} is not endorsed by the vendor's root key")
    public = {k: v for k, v in trusted[kid].items() if k not in {"_window", "endorsement"}}
    try:
        key = jwt.PyJWK(public, algorithm=ALGORITHM)
        claims = jwt.decode(
            document,
            key.key,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "require": ["iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Refused(f"signature or claims invalid ({exc})") from exc
    now = time.time() if now is None else now
    if not held and claims["iat"] > now + MAX_CLOCK_SKEW:
        raise Refused(
            "the document was issued in the future by this machine's clock: fix the clock (NTP)"
        )
    not_before, not_after = trusted[kid]["_window"]
    if claims["iat"] < not_before - MAX_CLOCK_SKEW or (
        not_after is not None and claims["iat"] > not_after
    ):
        raise Refused(f"the document was signed outside the key {kid!r}'s endorsed window")
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
    exp: float = claims["exp"]
    return exp - now
