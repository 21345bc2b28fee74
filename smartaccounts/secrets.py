"""Secrets handed out once (API keys, unlock links, tokens, credentials).

Each is >= 256 bits from the OS's CSPRNG; only an HMAC-SHA256 digest under SECRET_HASH_KEY is
stored, so a leaked table gives nothing to replay.
"""

import hashlib
import hmac
import secrets

from django.conf import settings

SECRET_BYTES = 32


def new_secret(prefix: str = "", nbytes: int = SECRET_BYTES) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def hash_secret(raw: str) -> str:
    key = settings.SECRET_HASH_KEY.encode()
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def secret_matches(raw: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(raw), digest)


def digests_match(digest: str, stored: str) -> bool:
    """A digest already computed (hash_secret) against a stored one, in constant time."""
    return hmac.compare_digest(digest, stored)
