"""Start-up checks of the settings the device exchange depends on."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from kernel.derived_keys import derived_from_secret_key

from .models import SigningKey
from .services import stale_after
from .trust import RootKeyMissing, endorsement_claims, root_public_key


@register()
def check_stale_threshold(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A server syncing on time has last_sync_at at most SYNC_RECORD_INTERVAL (plus one
    refresh period between syncs) old: the stale job must wait longer than that, or it flags
    healthy servers whose steady syncs were not recorded."""
    needed = settings.SYNC_RECORD_INTERVAL + settings.LICENSE_REFRESH_HINT
    if stale_after() < needed:
        return [
            Error(
                f"Servers go stale after {stale_after()}, but a server syncing on time may be "
                f"recorded only every {settings.SYNC_RECORD_INTERVAL} plus a refresh period "
                f"({settings.LICENSE_REFRESH_HINT}).",
                hint="Lower SYNC_RECORD_MINUTES or raise LICENSE_REFRESH_HOURS.",
                id="tokens.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_root_of_trust(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Without a root no signing key may sign (tokens.signing.signing_key): every activation
    and sync would answer 503. A root that endorses none of the keys in use is as bad."""
    try:
        root = root_public_key()
    except RootKeyMissing as exc:
        return [
            Error(
                f"The service has no root key to verify its signing keys' endorsements: {exc}.",
                hint="Set LICENSE_ROOT_PUBLIC_KEY to the vendor root's public key (ed25519:...; "
                "`manage.py root_public_key` prints it where the root file is kept).",
                id="tokens.E002",
            )
        ]
    try:
        oldest = timezone.now() - settings.LICENSE_LEASE - settings.LICENSE_REFRESH_HINT
        in_use = list(
            SigningKey.objects.exclude(endorsement="").filter(
                Q(retired_at__isnull=True) | Q(retired_at__gt=oldest)
            )
        )
    except DatabaseError:
        return []  # no database (yet) to compare with: the other checks still run
    refused = [key.kid for key in in_use if endorsement_claims(key, root) is None]
    if refused:
        return [
            Error(
                f"The root key the service trusts does not verify the endorsement of signing "
                f"key(s) {', '.join(refused)}: they never sign, and agents refuse them.",
                hint="Check LICENSE_ROOT_PUBLIC_KEY against `manage.py root_public_key` run "
                "where the root file is kept.",
                id="tokens.E003",
            )
        ]
    return []


def _derived(name: str, purpose: str) -> bool:
    """Whether a key setting holds the value licensing_portal/settings/base.py derives from
    DJANGO_SECRET_KEY when it is not set."""
    return bool(
        getattr(settings, name) == derived_from_secret_key(purpose, str(settings.SECRET_KEY))
    )


@register(Tags.security, deploy=True)
def check_keys_apart_from_the_secret_key(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Keys left to their fallback are derived from DJANGO_SECRET_KEY: whoever learns it learns
    them too, and rotating it silently changes them (every stored secret hash, every signing
    key's encryption, the links of queued e-mails)."""
    keep = "To keep what exists valid, set it to the value it has now"
    found: list[CheckMessage] = []
    if _derived("SECRET_HASH_KEY", "secret-hash"):
        found.append(
            Warning(
                "SECRET_HASH_KEY is not set: it is derived from DJANGO_SECRET_KEY.",
                hint=f"Set SECRET_HASH_KEY explicitly. {keep} (stored API keys, tokens and "
                "credentials are hashed under it).",
                id="tokens.W001",
            )
        )
    if _derived("OUTBOX_LINK_KEY", "outbox-links"):
        found.append(
            Warning(
                "OUTBOX_LINK_KEY is not set: it is derived from DJANGO_SECRET_KEY.",
                hint=f"Set OUTBOX_LINK_KEY explicitly. {keep} (links of e-mails not yet sent).",
                id="tokens.W002",
            )
        )
    if not settings.LICENSE_KEY_PASSPHRASE:
        found.append(
            Warning(
                "LICENSE_KEY_PASSPHRASE is not set: the signing keys are encrypted under a "
                "passphrase derived from DJANGO_SECRET_KEY.",
                hint="Set LICENSE_KEY_PASSPHRASE explicitly. To keep the stored signing keys "
                "readable, set it to 'license-keys:' followed by the current DJANGO_SECRET_KEY.",
                id="tokens.W003",
            )
        )
    return found
