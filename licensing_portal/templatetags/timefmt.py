"""How the portal and its e-mails show time to people: one format everywhere, minutes at
most, the zone named (UTC, as stored). Registered as a template builtin, so no ``{% load %}``.

    {{ server.last_sync_at|when }}   ->  2026-11-30 14:05 UTC
    {{ license.care_ends_at|day }}   ->  2026-11-30
"""

from datetime import UTC, date, datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    if not isinstance(value, datetime):
        return ""
    if timezone.is_aware(value):
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


@register.filter
def day(value: date | datetime | None) -> str:
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = value.astimezone(UTC)
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return ""
