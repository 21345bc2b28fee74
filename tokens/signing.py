"""Ed25519 signing keys and license documents (compact JWS, `typ: license+jwt`).

Private keys are stored PKCS#8-encrypted under a passphrase derived from
LICENSE_KEY_PASSPHRASE (or the secret key); decrypted keys are cached per process.
"""

import base64
import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .errors import TokenError
from .models import SigningKey
from .trust import (
    RootKeyMissing,
    endorse,
    load_root_private,
    may_sign,
    retire_predecessors,
    root_public_key,
)

ALGORITHM = "EdDSA"
DOCUMENT_TYPE = "license+jwt"
ROTATION_MARGIN = timedelta(minutes=1)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _passphrase() -> bytes:
    source = settings.LICENSE_KEY_PASSPHRASE or f"license-keys:{settings.SECRET_KEY}"
    return hashlib.sha256(source.encode()).digest()


def _thumbprint(public_raw: bytes) -> str:
    """RFC 7638 thumbprint of the OKP JWK, shortened: a stable, opaque kid."""
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{_b64url(public_raw)}"}}'
    return _b64url(hashlib.sha256(canonical.encode()).digest())[:22]


def create_signing_key(*, at_once: bool = False) -> SigningKey:
    """A new key, published now. It signs only once the root endorses it, and a rotated one
    not before KEYS_MAX_AGE (plus a margin) has passed, so verifiers behind a cache of /keys
    know it by then; the first key may sign at once. Endorsed at once where the root's private
    half is at hand (the embedded default), else by `manage.py endorse_signing_keys` where the
    root is kept. The previous key signs until the new one may, then retires.
    """
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_passphrase()),
    ).decode()
    now = timezone.now()
    with transaction.atomic():
        signing = SigningKey.objects.select_for_update().filter(retired_at__isnull=True)
        first = not signing.exists()
        # The first key also covers documents dated in the moment before it was made (their
        # iat is taken when the request began); nothing was signed before it.
        signs_from = (
            now - ROTATION_MARGIN
            if first
            else now
            if at_once
            else now + settings.KEYS_MAX_AGE + ROTATION_MARGIN
        )
        key = SigningKey(
            kid=_thumbprint(public_raw),
            public_key=_b64url(public_raw),
            private_key_encrypted=encrypted,
            created_at=now,
            signs_from=signs_from,
        )
        root = load_root_private()
        if root is not None:
            key.endorsement = endorse(key, root)
        key.save()
        if key.endorsement:
            retire_predecessors(key, now)
    _cache.clear()
    return key


class NoEndorsedKey(TokenError):
    """No signing key carries a valid endorsement of the root the service trusts."""

    def __init__(self, detail: str) -> None:
        super().__init__("service_unavailable", detail)


def signing_key(issued_at: int) -> tuple[SigningKey, dict[str, int]]:
    """The key that signs a document dated ``issued_at`` (its ``iat``), with its endorsement's
    window: the newest key whose time has come and whose endorsement by the configured root
    covers that date. A key still waiting for its endorsement never signs; its predecessor
    goes on. NoEndorsedKey when there is none (a fresh service gets its first key here,
    endorsed when the root is at hand)."""
    try:
        root = root_public_key()
    except RootKeyMissing as exc:
        raise NoEndorsedKey(
            "License documents cannot be issued now: the service has no root key."
        ) from exc
    moment = datetime.fromtimestamp(issued_at + 1, tz=UTC)  # iat is whole seconds, floored
    candidates = SigningKey.objects.filter(
        Q(signs_from__isnull=True) | Q(signs_from__lt=moment)
    ).exclude(endorsement="")
    for key in candidates.order_by("-created_at"):
        if window := may_sign(key, root, issued_at):
            return key, window
    if not SigningKey.objects.exists():
        key = create_signing_key()
        if window := may_sign(key, root, issued_at):
            return key, window
    raise NoEndorsedKey(
        "License documents cannot be issued now: no signing key is endorsed by the root."
    )


def published_keys(now: datetime) -> list[SigningKey]:
    """Keys a verifier may meet: the signing key and retired keys whose documents may still be
    within their lease."""
    oldest = now - settings.LICENSE_LEASE - settings.LICENSE_REFRESH_HINT
    keys = list(
        SigningKey.objects.filter(Q(retired_at__isnull=True) | Q(retired_at__gt=oldest)).order_by(
            "-created_at"
        )
    )
    if not any(key.retired_at is None or key.retired_at > now for key in keys):
        # A fresh service: make the first key now, so the set is never empty and the first
        # activation is signed by a key already published.
        keys.insert(0, create_signing_key())
    return keys


def jwk(key: SigningKey) -> dict[str, str]:
    published = {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": ALGORITHM,
        "use": "sig",
        "kid": key.kid,
        "x": key.public_key,
    }
    if key.endorsement:
        published["endorsement"] = key.endorsement
    return published


class _KeyCache:
    """The signing key, decrypted once per process and re-checked now and then (rotation)."""

    TTL_SECONDS = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (when cached, kid, private key, endorsement window)
        self._entry: tuple[float, str, Ed25519PrivateKey, dict[str, int]] | None = None

    def clear(self) -> None:
        with self._lock:
            self._entry = None

    def current(self, issued_at: int) -> tuple[str, Ed25519PrivateKey]:
        """The key for a document dated ``issued_at``: the cached one while its endorsement
        covers that date."""
        with self._lock:
            entry = self._entry
            if (
                entry is not None
                and time.monotonic() - entry[0] < self.TTL_SECONDS
                and entry[3]["nbf"] <= issued_at < entry[3]["exp"]
            ):
                return entry[1], entry[2]
        key, window = signing_key(issued_at)
        private = serialization.load_pem_private_key(
            key.private_key_encrypted.encode(), password=_passphrase()
        )
        assert isinstance(private, Ed25519PrivateKey)
        with self._lock:
            self._entry = (time.monotonic(), key.kid, private, window)
        return key.kid, private


_cache = _KeyCache()


def sign_document(claims: dict[str, Any]) -> str:
    """Signs with a key whose endorsement covers the document's ``iat`` (now when it has none),
    so the document passes every check of the keys endpoint's description."""
    issued_at = int(claims.get("iat", timezone.now().timestamp()))
    kid, private = _cache.current(issued_at)
    return jwt.encode(
        claims, private, algorithm=ALGORITHM, headers={"kid": kid, "typ": DOCUMENT_TYPE}
    )
