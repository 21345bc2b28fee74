"""The agent's root of trust: the vendor's Ed25519 root key, and the endorsements by which it
vouches for each license-signing key.

A signing key is trusted only when the root endorses it: a compact JWS (``typ:
key-endorsement+jwt``) signed by the root, whose claims name the key (``kid``, ``x``,
``crv``) and the window in which it may sign (``nbf``, ``exp``). Keys reach the agent from the
service's ``/api/v1/keys``, from a ``--keys`` file or from its own state file; every one is
checked here on every use, so a key that was merely written into a file gains nothing.

Which root: the one packaged with the agent (``vendor_root.pub``, replaced at build time with
the vendor's production root), and no other. An operator-supplied root (``APPSUITE_ROOT_KEY``:
the public key itself, ``ed25519:<base64url>``, or the path of a file holding it) is honoured
only in development mode (``--insecure-dev``, where the agent talks to a service on this
machine only); otherwise it is ignored, so a site cannot endorse its own signing key and
license itself. ``status`` and ``diagnose`` say which root is in force, and that an
operator-supplied one is not for production use.
"""

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ALGORITHM = "EdDSA"
ENDORSEMENT_TYPE = "key-endorsement+jwt"
PREFIX = "ed25519:"
PACKAGED_ROOT = Path(__file__).with_name("vendor_root.pub")
ROOT_SETTING = "APPSUITE_ROOT_KEY"


class UntrustedRoot(Exception):
    """The configured root key cannot be read."""


@dataclass(frozen=True)
class Root:
    public: Ed25519PublicKey
    raw: bytes
    source: str  # where it came from, for status and diagnose
    operator_supplied: bool = False  # development only: never licenses for production use

    @property
    def kid(self) -> str:
        return root_kid(self.raw)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def root_kid(raw: bytes) -> str:
    """RFC 7638 thumbprint of the root's JWK, shortened (as the service names keys)."""
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{_b64url(raw)}"}}'
    return _b64url(hashlib.sha256(canonical.encode()).digest())[:22]


def parse_root(text: str, source: str, *, operator_supplied: bool = False) -> Root:
    value = text.strip()
    if not value.startswith(PREFIX):
        raise UntrustedRoot(f"{source}: expected '{PREFIX}<base64url>', got {value[:40]!r}")
    try:
        raw = _b64url_decode(value[len(PREFIX) :])
        public = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise UntrustedRoot(f"{source}: not an Ed25519 public key ({exc})") from exc
    return Root(public=public, raw=raw, source=source, operator_supplied=operator_supplied)


def root_setting() -> str:
    """The operator's APPSUITE_ROOT_KEY, empty when unset."""
    return os.environ.get(ROOT_SETTING, "").strip()


IGNORED_SETTING = (
    f"{ROOT_SETTING} is ignored: this agent trusts only the vendor's root key packaged with "
    "it. An operator-supplied root is for development only (--insecure-dev, with the "
    "licensing service on this machine); unset it in production."
)


def load_root(*, development: bool = False) -> Root:
    """The packaged vendor root; the operator's APPSUITE_ROOT_KEY instead only in development
    mode. Outside it the setting is ignored (see IGNORED_SETTING), never trusted."""
    setting = root_setting()
    if setting and development:
        if setting.startswith(PREFIX):
            return parse_root(
                setting,
                f"operator-supplied via {ROOT_SETTING}, development only",
                operator_supplied=True,
            )
        path = Path(setting)
        try:
            text = path.read_text()
        except OSError as exc:
            raise UntrustedRoot(f"{ROOT_SETTING}={setting}: cannot read it ({exc})") from exc
        return parse_root(
            text,
            f"operator-supplied via {ROOT_SETTING} file {path}, development only",
            operator_supplied=True,
        )
    return parse_root(PACKAGED_ROOT.read_text(), "packaged with the agent")


def endorsement_window(key: dict[str, Any], root: Root) -> tuple[float, float | None] | None:
    """(nbf, exp) of the root's endorsement of this JWK, or None when the root does not
    endorse it (no endorsement, another root, another key, a forged signature)."""
    endorsement = key.get("endorsement")
    if not isinstance(endorsement, str) or not endorsement:
        return None
    try:
        header = jwt.get_unverified_header(endorsement)
        if header.get("alg") != ALGORITHM or header.get("typ") != ENDORSEMENT_TYPE:
            return None
        claims = jwt.decode(
            endorsement,
            root.public,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": ["kid", "x", "nbf"],
            },
        )
    except jwt.PyJWTError:
        return None
    if (
        claims.get("kid") != key.get("kid")
        or claims.get("x") != key.get("x")
        or claims.get("crv", "Ed25519") != key.get("crv")
        or key.get("kty") != "OKP"
    ):
        return None
    exp = claims.get("exp")
    return float(claims["nbf"]), float(exp) if exp is not None else None


def endorsed(keys: dict[str, dict[str, Any]], root: Root) -> dict[str, dict[str, Any]]:
    """The keys the root endorses, each with its window under ``_window``."""
    trusted = {}
    for kid, key in keys.items():
        window = endorsement_window(key, root)
        if window is not None and kid == key.get("kid"):
            trusted[kid] = {**key, "_window": window}
    return trusted


def public_text(raw: bytes) -> str:
    return PREFIX + _b64url(raw)
