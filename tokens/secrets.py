"""Activation tokens: `act_` + 160 random bits (base32) + a CRC-32 checksum.

The checksum lets the activation endpoint tell a mistyped paste from a token that never
existed, without a database lookup; it adds no secrecy, the random part does.
"""

import base64
import secrets
import zlib

TOKEN_PREFIX = "act_"
_RANDOM_BYTES = 20  # 160 bits
_BODY_LENGTH = 32  # base32 of 20 bytes, no padding
_CHECKSUM_LENGTH = 7  # base32 of a 32-bit CRC, padding stripped


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _checksum(body: str) -> str:
    return _b32(zlib.crc32(body.encode()).to_bytes(4, "big"))


def new_activation_token() -> str:
    body = _b32(secrets.token_bytes(_RANDOM_BYTES))
    return f"{TOKEN_PREFIX}{body}{_checksum(body)}"


def normalize_token(raw: str) -> str:
    """What operators paste may carry spaces, line breaks or upper case."""
    return "".join(raw.split()).lower()


def token_checksum_ok(token: str) -> bool:
    """True when the token is shaped right and its checksum matches (it may still be unknown)."""
    if not token.startswith(TOKEN_PREFIX):
        return False
    rest = token[len(TOKEN_PREFIX) :]
    if len(rest) != _BODY_LENGTH + _CHECKSUM_LENGTH:
        return False
    body, checksum = rest[:_BODY_LENGTH], rest[_BODY_LENGTH:]
    return secrets.compare_digest(_checksum(body), checksum)
