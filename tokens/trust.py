"""The vendor's root of trust over license-signing keys (SECURITY.md S20, S22).

The root is one long-lived Ed25519 key. Its private half signs *endorsements*, never license
documents, and need not live on the web servers: production keeps it with vendor staff
(``LICENSE_ROOT_KEY_FILE`` on the machine where ``manage.py endorse_signing_keys`` runs), while
the embedded default keeps it under ``var/`` so a signing key made there is endorsed at once.

An endorsement is a compact JWS (``typ: key-endorsement+jwt``) by the root over the signing
key's ``kid``, raw public key ``x`` and the window in which it may sign (``nbf``..``exp``).
``/api/v1/keys`` serves each key with its endorsement; the agent trusts a signing key only
through it (appsuite_agent/trust.py is the verifying half).
"""

import base64
import binascii
import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import SigningKey

ENDORSEMENT_TYPE = "key-endorsement+jwt"
PREFIX = "ed25519:"


class RootKeyMissing(Exception):
    """No root key where the settings say it is (or the configured one cannot be read)."""


class RootMismatch(Exception):
    """The root key at hand is not the one the service is configured to trust."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def root_kid(raw: bytes) -> str:
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{_b64url(raw)}"}}'
    return _b64url(hashlib.sha256(canonical.encode()).digest())[:22]


def root_key_path() -> Path:
    return Path(settings.LICENSE_ROOT_KEY_FILE)


def create_root_key(path: Path | None = None) -> str:
    """Writes a new root private key (PKCS#8 PEM, owner-only) and returns its public half."""
    path = path or root_key_path()
    if path.exists():
        raise FileExistsError(f"{path} exists: a root key is made once")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return public_text(_raw_public(private))


def load_root_private(path: Path | None = None) -> Ed25519PrivateKey | None:
    """The root's private half, when this machine holds it (None otherwise)."""
    path = path or root_key_path()
    if not path.is_file():
        return None
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    return private


def public_text(raw: bytes) -> str:
    return PREFIX + _b64url(raw)


def root_public_text() -> str:
    """The root's public key as the agent takes it (``ed25519:<base64url>``)."""
    if settings.LICENSE_ROOT_PUBLIC_KEY:
        return settings.LICENSE_ROOT_PUBLIC_KEY
    private = load_root_private()
    if private is None:
        raise RootKeyMissing(
            f"no root key: set LICENSE_ROOT_PUBLIC_KEY, or create one with "
            f"`manage.py create_root_key` (it goes to {root_key_path()})"
        )
    return public_text(_raw_public(private))


def root_public_key() -> Ed25519PublicKey:
    """The root the service trusts: LICENSE_ROOT_PUBLIC_KEY, else the public half of the root
    file. RootKeyMissing when there is neither, or the setting is not an Ed25519 key."""
    text = root_public_text().strip()
    if not text.startswith(PREFIX):
        raise RootKeyMissing(f"LICENSE_ROOT_PUBLIC_KEY: expected '{PREFIX}<base64url>'")
    encoded = text[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise RootKeyMissing(f"LICENSE_ROOT_PUBLIC_KEY: not an Ed25519 public key ({exc})") from exc


def endorsement_claims(key: SigningKey, root: Ed25519PublicKey) -> dict[str, int] | None:
    """The window (``nbf``, ``exp``) of the key's endorsement when the root signed it for this
    very key (its ``kid``, ``x`` and ``crv``); None otherwise. The rules a verifier applies
    (the keys endpoint's schema and docs/device-protocol.md state them)."""
    if not key.endorsement:
        return None
    try:
        header = jwt.get_unverified_header(key.endorsement)
        if header.get("alg") != "EdDSA" or header.get("typ") != ENDORSEMENT_TYPE:
            return None
        claims = jwt.decode(
            key.endorsement,
            root,
            algorithms=["EdDSA"],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": ["kid", "x", "crv", "nbf", "exp"],
            },
        )
    except jwt.PyJWTError:
        return None
    if (claims["kid"], claims["x"], claims["crv"]) != (key.kid, key.public_key, "Ed25519"):
        return None
    if not isinstance(claims["nbf"], int) or not isinstance(claims["exp"], int):
        return None
    return {"nbf": claims["nbf"], "exp": claims["exp"]}


def may_sign(key: SigningKey, root: Ed25519PublicKey, issued_at: int) -> dict[str, int] | None:
    """The endorsement's window when a document dated ``issued_at`` (its ``iat``) by this key
    verifies: the root endorses the key and the date lies in the window. None otherwise."""
    window = endorsement_claims(key, root)
    if window is None or not window["nbf"] <= issued_at < window["exp"]:
        return None
    return window


def endorse(key: SigningKey, root: Ed25519PrivateKey) -> str:
    """The root's endorsement of one signing key, for the window it may sign in."""
    not_before = key.signs_from or key.created_at
    not_after = not_before + timedelta(days=settings.LICENSE_KEY_ENDORSEMENT_DAYS)
    claims = {
        "iss": settings.LICENSE_ISSUER,
        "kid": key.kid,
        "x": key.public_key,
        "crv": "Ed25519",
        "nbf": int(not_before.timestamp()),
        "exp": int(not_after.timestamp()),
        "iat": int(timezone.now().timestamp()),
    }
    return jwt.encode(
        claims,
        root,
        algorithm="EdDSA",
        headers={"typ": ENDORSEMENT_TYPE, "kid": root_kid(_raw_public(root))},
    )


def check_root_matches(root: Ed25519PrivateKey) -> None:
    """RootMismatch when the service is configured to trust another root than this one (an
    endorsement by it would never verify, on the web tier or in the field)."""
    try:
        trusted = root_public_text().strip()
    except RootKeyMissing:
        return  # this machine names no root of its own: the key at hand is the root
    if trusted != public_text(_raw_public(root)):
        raise RootMismatch(
            f"this root key ({public_text(_raw_public(root))}) is not the root the service "
            f"trusts ({trusted}): its endorsements would be refused"
        )


def retire_predecessors(key: SigningKey, now: datetime) -> None:
    """An endorsed key takes over: the keys before it sign until it may (its signs_from, or
    now when that has passed), then retire. Call inside a transaction."""
    takes_over = max(key.signs_from or now, now)
    SigningKey.objects.filter(created_at__lt=key.created_at).filter(
        Q(retired_at__isnull=True) | Q(retired_at__gt=takes_over)
    ).update(retired_at=takes_over)


def endorse_pending(root: Ed25519PrivateKey) -> list[SigningKey]:
    """Endorses every key that has no endorsement yet, oldest first, and retires the keys
    each one replaces. Returns them. RootMismatch, endorsing nothing, when the service
    trusts another root."""
    check_root_matches(root)
    done = []
    now = timezone.now()
    with transaction.atomic():
        pending = SigningKey.objects.select_for_update().filter(endorsement="")
        for key in pending.order_by("created_at"):
            key.endorsement = endorse(key, root)
            key.save(update_fields=["endorsement"])
            retire_predecessors(key, now)
            done.append(key)
    return done
