"""Keys the settings fall back to when they are not set: each derived from DJANGO_SECRET_KEY
for one purpose. One formula, read by the settings and by the deploy check that warns of it."""

import hashlib


def derived_from_secret_key(purpose: str, secret_key: str) -> str:
    return hashlib.sha256(f"{purpose}:{secret_key}".encode()).hexdigest()
