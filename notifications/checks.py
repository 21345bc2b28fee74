"""Start-up checks of the outbox's settings."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


def longest_sweep_run() -> timedelta:
    """The longest one sweep can hold a row: it starts no row after OUTBOX_SWEEP_MAX_SECONDS,
    and the last one started may take one send (EMAIL_TIMEOUT) more."""
    return settings.OUTBOX_SWEEP_MAX_SECONDS + timedelta(seconds=settings.EMAIL_TIMEOUT)


@register()
def check_claim_outlives_the_sweep(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A claim that ran out while its sender still works lets a second sender send the row
    again: the lease must be longer than anything one sender does with the row."""
    if longest_sweep_run() >= settings.OUTBOX_CLAIM_LEASE:
        return [
            Error(
                f"An outbox claim lasts {settings.OUTBOX_CLAIM_LEASE}, but a sweep may run "
                f"{longest_sweep_run()} (OUTBOX_SWEEP_MAX_SECONDS + EMAIL_TIMEOUT): a claim "
                "could run out while its sender still works.",
                hint="Raise OUTBOX_CLAIM_LEASE_SECONDS or lower OUTBOX_SWEEP_MAX_SECONDS.",
                id="notifications.E001",
            )
        ]
    return []
