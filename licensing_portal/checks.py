"""Deployment checks (`manage.py check --deploy`) of the settings the shell owns."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_metrics_token(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Without METRICS_TOKEN, /internal/metrics trusts the connection's address alone, and a
    proxy that routes /internal/ makes every request come from an allowed address."""
    if settings.DEBUG or settings.METRICS_TOKEN:
        return []
    return [
        Warning(
            "METRICS_TOKEN is not set: /internal/metrics is answered to any caller connected "
            "from METRICS_ALLOWED_NETWORKS on its address alone.",
            hint=(
                "Set METRICS_TOKEN to a long random value and scrape with "
                "'Authorization: Bearer <token>'; never route /internal/ through the proxy."
            ),
            id="licensing_portal.W001",
        )
    ]
