"""Start-up checks of the settings the device exchange depends on."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from .services import stale_after


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
