"""A vendor for the agent's tests: a root key and a signing key it endorses, made here as the
service makes them (tokens/trust.py), and the license documents they sign. An attacker is just
another Vendor: its own root, its own endorsed key, its own documents."""

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appsuite_agent.trust import ENDORSEMENT_TYPE, root_kid

FINGERPRINT = "fp-offline-machine"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def write(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


class Vendor:
    """A root key and one signing key it endorses, as the service publishes them."""

    def __init__(self) -> None:
        self.root = Ed25519PrivateKey.generate()
        self.root_text = "ed25519:" + b64(raw_public(self.root))
        self.root_kid = root_kid(raw_public(self.root))
        self.signing = Ed25519PrivateKey.generate()
        self.kid = "signing-" + b64(raw_public(self.signing))[:8]

    def jwk(self, private: Ed25519PrivateKey | None = None, kid: str | None = None, **extra):
        private = private or self.signing
        key = {
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": kid or self.kid,
            "x": b64(raw_public(private)),
        }
        key["endorsement"] = self.endorse(key, **extra)
        return key

    def endorse(self, key: dict, *, by=None, nbf: float | None = None, exp=None, x=None) -> str:
        claims = {
            "kid": key["kid"],
            "x": x or key["x"],
            "crv": "Ed25519",
            "nbf": int(nbf if nbf is not None else time.time() - 86400),
            "iat": int(time.time()),
        }
        if exp is not None:
            claims["exp"] = int(exp)
        return jwt.encode(
            claims,
            by or self.root,
            algorithm="EdDSA",
            headers={"typ": ENDORSEMENT_TYPE, "kid": root_kid(raw_public(by or self.root))},
        )

    def document(
        self,
        *,
        private=None,
        kid=None,
        iat=None,
        quantity=10,
        sub="srv-1",
        mode="offline",
        fingerprint=FINGERPRINT,
        lease: float | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": "https://licensing.example.test",
            "sub": sub,
            "iat": int(iat if iat is not None else time.time()),
            "fingerprint": fingerprint,
            "mode": mode,
            "account": {"id": "acc", "name": "Carol Corp"},
            "entitlements": [
                {
                    "product": "CALL_RECORDING",
                    "quantity": quantity,
                    "kind": "perpetual",
                    "ends_at": None,
                    "care_ends_at": None,
                    "care_status": "none",
                }
            ],
            "services": [],
        }
        if lease is not None:
            claims["exp"] = int(claims["iat"] + lease)
        return jwt.encode(
            claims,
            private or self.signing,
            algorithm="EdDSA",
            headers={"kid": kid or self.kid, "typ": "license+jwt"},
        )
