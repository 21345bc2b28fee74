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
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.utils import timezone

from .models import SigningKey

ENDORSEMENT_TYPE = "key-endorsement+jwt"
PREFIX = "ed25519:"


class RootKeyMissing(Exception):
    """No root key where the settings say it is."""


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


def endorse_pending(root: Ed25519PrivateKey) -> list[SigningKey]:
    """Endorses every key that has no endorsement yet. Returns them."""
    done = []
    for key in SigningKey.objects.filter(endorsement=""):
        key.endorsement = endorse(key, root)
        key.save(update_fields=["endorsement"])
        done.append(key)
    return done
