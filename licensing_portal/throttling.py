"""Failed-attempt limits per client address, for endpoints that take guessable secrets.

Only failures count, so a data centre activating hundreds of servers from one address is never
slowed; an address that keeps presenting unknown tokens or links is refused for the rest of the
window. Counters live in the cache (Redis in production); if the cache is unreachable the
limiter lets requests through rather than take the service down with it.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


class FailureLimiter:
    def __init__(self, scope: str) -> None:
        self.scope = scope

    def _window(self) -> tuple[str, int]:
        length = int(settings.FAILED_ATTEMPTS_WINDOW.total_seconds())
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
        if failures >= settings.FAILED_ATTEMPTS_LIMIT:
            return max(1, end - int(time.time()))
        return None

    def record_failure(self, address: str | None) -> None:
        if address is None:
            return
        prefix, end = self._window()
        key = f"{prefix}:{address}"
        try:
            if not cache.add(key, 1, timeout=end - int(time.time()) + 1):
                cache.incr(key)
        except Exception:
            logger.warning("Failure limiter cache unavailable", exc_info=True)


activation_failures = FailureLimiter("activation")
unlock_failures = FailureLimiter("unlock")
