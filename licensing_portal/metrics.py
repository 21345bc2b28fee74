"""/internal/metrics: the Prometheus exposition, for operators only.

With METRICS_TOKEN set, answered only to a caller presenting it as a bearer token, wherever it
connects from. Without it, answered only to a caller connected from METRICS_ALLOWED_NETWORKS
(loopback by default; the direct peer's address, never a forwarded one), and in production
never to a request carrying forwarded headers: it came through a proxy, so its peer address
is the proxy's and says nothing of the caller. Anyone else gets 404, as for a path that does
not exist. The TLS proxy must never route /internal/ (docker-compose.yml, docs/operations.md);
`check --deploy` warns when METRICS_TOKEN is unset in production (licensing_portal.checks)."""

import hmac
import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from kernel.metrics import multiprocess_dir
from kernel.problems import problem_response
from notifications.selectors import outbox_backlog, outbox_failed


class OutboxCollector(Collector):
    """The outbox backlog, read at scrape time in one query."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = outbox_backlog(timezone.now())
        yield GaugeMetricFamily(
            "licensing_outbox_unsent", "E-mails waiting to be sent.", value=backlog.unsent
        )
        yield GaugeMetricFamily(
            "licensing_outbox_oldest_unsent_age_seconds",
            "How long the oldest unsent e-mail has waited (0 when none waits).",
            value=backlog.oldest_age_seconds,
        )
        yield GaugeMetricFamily(
            "licensing_outbox_failed",
            "E-mails given up on after OUTBOX_GIVE_UP_HOURS of failed attempts, not re-sent.",
            value=outbox_failed(),
        )


# Headers a proxy adds: a request carrying one came through a proxy.
FORWARDED_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        presented = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        return hmac.compare_digest(presented.encode(), token.encode())
    if not settings.DEBUG and any(name in request.META for name in FORWARDED_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)


def scrape() -> bytes:
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(OutboxCollector())
        return generate_latest(registry)
    # One process: its own values, and the outbox.
    registry.register(OutboxCollector())
    return generate_latest(REGISTRY) + generate_latest(registry)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return problem_response(request, 404, "not_found", "Not found.")
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
