"""Failed-attempt limits per client address, for endpoints that take guessable secrets.

Only failures count, so a data centre activating hundreds of servers from one address is never
slowed; an address that keeps presenting unknown tokens or links is refused for the rest of the
window. Counters live in the cache (Redis in production); if the cache is unreachable the
limiter lets requests through rather than take the service down with it.
"""

import hashlib
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache

from .metrics import record_lockout

logger = logging.getLogger(__name__)


class FailureLimiter:
    """At most ``limit()`` events per key (a client address, an e-mail) in a fixed window of
    ``window()`` seconds; the settings are read when used, so tests and deployments tune them.
    """

    def __init__(
        self,
        scope: str,
        limit: Callable[[], int] = lambda: settings.FAILED_ATTEMPTS_LIMIT,
        window: Callable[[], int] = lambda: int(settings.FAILED_ATTEMPTS_WINDOW.total_seconds()),
    ) -> None:
        self.scope = scope
        self.limit = limit
        self.window = window

    def _window(self) -> tuple[str, int]:
        length = max(1, self.window())
        start = int(time.time()) // length * length
        return f"failures:{self.scope}:{start}", start + length

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until the address may try again, or None when it may now."""
        if address is None:
            return None
        prefix, end = self._window()
        try:
            failures = cache.get(f"{prefix}:{address}", 0)
        except Exception:  # the cache is down: fail open
            logger.warning("Failure limiter cache unavailable", exc_info=True)
            return None
        if failures >= self.limit():
            return max(1, end - int(time.time()))
        return None

    def record_failure(self, address: str | None) -> None:
        if address is None:
            return
        prefix, end = self._window()
        key = f"{prefix}:{address}"
        try:
            failures = 1 if cache.add(key, 1, timeout=end - int(time.time()) + 1) else None
            if failures is None:
                failures = cache.incr(key)
        except Exception:
            logger.warning("Failure limiter cache unavailable", exc_info=True)
            return
        if failures == self.limit():  # this failure trips the limit
            record_lockout(self.scope)

    def record_distinct(self, address: str | None, value: str) -> None:
        """Counts ``value`` (a username tried) once per address and window: the limit is then
        on how many different values one address tries (password spraying)."""
        if address is None:
            return
        prefix, end = self._window()
        digest = hashlib.sha256(value.lower().encode()).hexdigest()[:16]
        seen = f"{prefix}:{address}:seen:{digest}"
        try:
            if cache.add(seen, 1, timeout=end - int(time.time()) + 1):
                self.record_failure(address)
        except Exception:
            logger.warning("Failure limiter cache unavailable", exc_info=True)


activation_failures = FailureLimiter("activation")
unlock_failures = FailureLimiter("unlock")
# Password spraying: distinct usernames failed from one address.
login_spraying = FailureLimiter(
    "login-spray",
    limit=lambda: settings.LOGIN_SPRAY_LIMIT,
    window=lambda: settings.LOGIN_SPRAY_WINDOW_MINUTES * 60,
)
# Password-reset requests: per client address, and per e-mail address asked for.
reset_by_address = FailureLimiter(
    "reset-address", limit=lambda: settings.PASSWORD_RESET_LIMIT_PER_ADDRESS, window=lambda: 3600
)
reset_by_email = FailureLimiter(
    "reset-email", limit=lambda: settings.PASSWORD_RESET_LIMIT_PER_EMAIL, window=lambda: 3600
)
